"""The ``ctrlspeak`` command line.

stdout carries results (transcripts, tables, JSON); stderr carries diagnostics and
progress. Every failure is one line ``ctrlspeak: ERR_CODE: what happened (what to do)``
and a stable exit status (see :mod:`ctrlspeak.errors`). Every verb is one function that
:func:`main` calls; heavy modules are imported inside them, so ``ctrlspeak --help`` stays
instant and the process never imports torch.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from ctrlspeak import __version__, errors
from ctrlspeak.commands import flags

log = logging.getLogger("ctrlspeak")


def build_parser() -> argparse.ArgumentParser:
    """Every verb, each with ``func``: the one function that runs it (see :func:`main`)."""
    parser = argparse.ArgumentParser(prog="ctrlspeak", description="Local, offline dictation on NVIDIA NeMo models.")
    parser.add_argument("--version", action="version", version=f"ctrlspeak {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more diagnostics on stderr (-vv: debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    t = sub.add_parser("transcribe", help="transcribe audio files (WAV, FLAC, OGG, ...)")
    t.add_argument("files", nargs="+", metavar="FILE")
    flags.add_model_flags(t, old_device=True)
    t.add_argument("--language", "-l", help="source language (Canary, multilingual models)")
    t.add_argument("--target-language", "-t", help="translate into this language (Canary)")
    t.add_argument("--no-punctuation", dest="punctuation", action="store_false", default=None,
                   help="ask Canary for text without punctuation and capitals")
    t.add_argument("--json", action="store_true", help="print JSON with timings instead of plain text")
    t.add_argument("--raw", action="store_true",
                   help="print the model's own text, without the text pipeline ([words], spoken punctuation...)")
    t.add_argument("--progress", choices=("auto", "bar", "lines", "none"), default="auto",
                   help="how to show model loading progress on stderr (default: bars on a terminal)")
    t.add_argument("--stream", action="store_true",
                   help="the daemon's live path: print the text as it is recognised (--json: a line per event)")
    t.add_argument("--realtime", action="store_true", help="with --stream: feed the audio at its own pace")
    flags.add_chunk_flag(t)
    t.set_defaults(func=flags.lazy("ctrlspeak.commands.transcribe", "run"))

    m = sub.add_parser("models", help="list, download or choose models")
    m.set_defaults(func=lambda args: m.parse_args(["--help"]))  # `ctrlspeak models` alone: its help
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
    for action, verb in ((ml, "list_verb"), (md, "download_verb"), (mr, "remove_verb"), (mu, "use_verb")):
        action.set_defaults(func=flags.lazy("ctrlspeak.commands.models", verb))

    from ctrlspeak.commands import bench, daemon, doctor, history, retry, service, shortcuts, words

    daemon.add_parsers(sub)
    history.add_parser(sub)
    retry.add_parser(sub)
    service.add_parser(sub)
    doctor.add_parser(sub)
    bench.add_parser(sub)
    shortcuts.add_parser(sub)
    words.add_parser(sub)
    return parser


def _setup_logging(verbosity: int) -> None:
    level = logging.WARNING if verbosity == 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="ctrlspeak: %(levelname)s %(name)s: %(message)s", stream=sys.stderr)


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
        return args.func(args)
    except errors.CtrlspeakError as exc:
        report(exc, args.verbose)
        return exc.exit_status
    except KeyboardInterrupt:
        print("ctrlspeak: interrupted", file=sys.stderr)
        return 130


def report(exc: errors.CtrlspeakError, verbose: int = 0) -> None:
    print(f"ctrlspeak: {exc.one_line()}", file=sys.stderr)
    if verbose and exc.detail:
        print(exc.detail, file=sys.stderr)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
