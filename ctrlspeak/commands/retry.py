"""``ctrlspeak retry [last|ID] [--model M]``: transcribe a kept recording again."""
from __future__ import annotations

import argparse
import sys
from typing import Any

from ctrlspeak import config, errors


def add_parser(sub: Any) -> None:
    p = sub.add_parser("retry", help="transcribe a recording kept in the journal again (maybe with another model)")
    p.add_argument("which", nargs="?", default="last", help="`last` (default) or a recording id")
    p.add_argument("--model", "-m", help="transcribe with this model (default: the one the recording was made with)")
    p.add_argument("--list", action="store_true", help="list the kept recordings instead")
    p.add_argument("--progress", choices=("auto", "bar", "lines", "none"), default="auto")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ctrlspeak.commands.transcribe import check_available, run_batch
    from ctrlspeak.history import History
    from ctrlspeak.audio.journal import Journal
    from ctrlspeak.models import registry

    try:
        journal = Journal()
    except OSError as exc:
        raise errors.JournalError(f"cannot open the audio journal: {exc.strerror or exc}") from None
    if args.list:
        entries = journal.kept() + journal.leftovers()
        for e in entries:
            state = "kept" if e in journal.kept() else "not yet transcribed"
            print(f"{e.id}  {e.audio_s:6.1f} s  {state}")
        if not entries:
            print("no recordings are kept (set keep_recordings = N in the config)", file=sys.stderr)
        return 0
    entry = journal.find(args.which)
    cfg = config.load({"model": args.model})
    ref = _model_for(entry, cfg) if args.model is None else registry.resolve(cfg.model)
    check_available(cfg, ref)
    results, ready, _client, _t0 = run_batch(cfg, ref, [(entry.id, journal.read(entry))], args.progress)
    result = results[0]
    if "error" in result:
        raise result["error"]
    from ctrlspeak.text import context, pipeline

    raw = result["text"]
    text = pipeline.apply(raw, context.from_config(cfg))  # as the daemon would deliver it
    leftover = entry in journal.leftovers()
    with History() as history:
        # a leftover carries its journal id, so the daemon's replay of it adds no second row
        history.add(text, model=ready.model, duration_s=result["audio_s"], latency_s=None, source="retry",
                    journal_id=entry.id if leftover else None, raw_text=raw)
    if not entry.complete or leftover:
        journal.done(entry.id)  # it is in history now
    print(text)
    return 0


def _model_for(entry: Any, cfg: config.Config) -> Any:
    """The model the recording was made with (its journal metadata), else the configured one.
    That is the model that is cached and worked; the configured default may not be."""
    from ctrlspeak.models import registry

    made_with = entry.meta.get("model")
    if isinstance(made_with, str) and made_with:
        try:
            ref = registry.resolve(made_with)
            if ref.source == "hf" and registry.cached_path(ref, cfg.hf_cache_dir) is None:
                raise registry.not_cached_error(ref, "any more")
            return ref
        except errors.CtrlspeakError as exc:
            print(f"ctrlspeak: the recording was made with {made_with!r}, which is not available "
                  f"({exc.message}); using {cfg.model}", file=sys.stderr)
    return registry.resolve(cfg.model)
