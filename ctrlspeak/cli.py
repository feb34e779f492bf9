"""The ``ctrlspeak`` command line.

stdout carries results (transcripts, tables, JSON); stderr carries diagnostics and
progress. Every failure is one line ``ctrlspeak: ERR_CODE: what happened (what to do)``
and a stable exit status (see :mod:`ctrlspeak.errors`). Heavy modules are imported inside
the commands, so ``ctrlspeak --help`` stays instant and the process never imports torch.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from ctrlspeak import __version__, errors

log = logging.getLogger("ctrlspeak")


def _add_model_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", "-m", help="alias, org/name Hugging Face id, or path to a .nemo file")
    p.add_argument("--device", dest="compute_device", choices=("auto", "cpu", "cuda", "mps"),
                   help="compute device for the model (default: auto = CUDA, then MPS, then CPU)")
    p.add_argument("--threads", type=int, help="torch threads in the worker (default: physical cores, at most 4)")
    p.add_argument("--offline", action="store_true", default=None, help="never touch the network")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ctrlspeak", description="Local, offline dictation on NVIDIA NeMo models.")
    parser.add_argument("--version", action="version", version=f"ctrlspeak {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more diagnostics on stderr (-vv: debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    t = sub.add_parser("transcribe", help="transcribe audio files (WAV, FLAC, OGG, ...)")
    t.add_argument("files", nargs="+", metavar="FILE")
    _add_model_flags(t)
    t.add_argument("--language", "-l", help="source language (Canary, multilingual models)")
    t.add_argument("--target-language", "-t", help="translate into this language (Canary)")
    t.add_argument("--no-punctuation", dest="punctuation", action="store_false", default=None,
                   help="ask Canary for text without punctuation and capitals")
    t.add_argument("--json", action="store_true", help="print JSON with timings instead of plain text")
    t.add_argument("--progress", choices=("auto", "bar", "lines", "none"), default="auto",
                   help="how to show model loading progress on stderr (default: bars on a terminal)")

    m = sub.add_parser("models", help="list, download or choose models")
    msub = m.add_subparsers(dest="models_command", metavar="ACTION")
    ml = msub.add_parser("list", help="show the known models, whether each is cached, and its size on disk")
    ml.add_argument("--json", action="store_true")
    md = msub.add_parser("download", help="fetch a model into the local cache")
    md.add_argument("name")
    md.add_argument("--force", action="store_true", help="download again even if cached")
    mr = msub.add_parser("remove", help="delete a downloaded model and its fast-start cache")
    mr.add_argument("name")
    mu = msub.add_parser("use", help="make a model the default (writes the config file)")
    mu.add_argument("name")

    from ctrlspeak.commands import bench, daemon, doctor, history, retry, service

    daemon.add_parsers(sub)
    history.add_parser(sub)
    retry.add_parser(sub)
    service.add_parser(sub)
    doctor.add_parser(sub)
    bench.add_parser(sub)
    return parser


def _setup_logging(verbosity: int) -> None:
    level = logging.WARNING if verbosity == 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="ctrlspeak: %(levelname)s %(name)s: %(message)s", stream=sys.stderr)


def _config_flags(args: argparse.Namespace) -> dict[str, object]:
    names = ("model", "compute_device", "threads", "offline", "language", "target_language", "punctuation")
    return {name: getattr(args, name, None) for name in names}


def main(argv: Sequence[str] | None = None) -> int:
    # huggingface_hub's user agent otherwise reports the torch version and fetches
    # {HF_ENDPOINT}/api/agent-harnesses (once a day) on the first request: an offline
    # dictation tool sends nothing it does not need. Read when huggingface_hub is imported,
    # so set here, before any import of it; spawned workers inherit it.
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args.verbose)
    if args.command is None:
        parser.print_help(sys.stderr)
        return errors.info_for("ERR_USAGE").exit_status
    try:
        if args.command == "transcribe":
            from ctrlspeak.commands import transcribe

            return transcribe.run(args, _config_flags(args))
        if args.command == "models":
            from ctrlspeak.commands import models

            if args.models_command is None:
                parser.parse_args(["models", "--help"])
            return models.run(args, _config_flags(args))
        if getattr(args, "func", None) is not None:
            return args.func(args)
    except errors.CtrlspeakError as exc:
        report(exc, args.verbose)
        return exc.exit_status
    except KeyboardInterrupt:
        print("ctrlspeak: interrupted", file=sys.stderr)
        return 130
    parser.error(f"unknown command {args.command!r}")
    return 2


def report(exc: errors.CtrlspeakError, verbose: int = 0) -> None:
    print(f"ctrlspeak: {exc.one_line()}", file=sys.stderr)
    if verbose and exc.detail:
        print(exc.detail, file=sys.stderr)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
