"""``ctrlspeak retry [last|ID] [--model M]``: transcribe a kept recording again."""
from __future__ import annotations

import argparse
import sys
from typing import Any

from ctrlspeak import config


def add_parser(sub: Any) -> None:
    p = sub.add_parser("retry", help="transcribe a recording kept in the journal again (maybe with another model)")
    p.add_argument("which", nargs="?", default="last", help="`last` (default) or a recording id")
    p.add_argument("--model", "-m", help="transcribe with this model instead of the configured one")
    p.add_argument("--list", action="store_true", help="list the kept recordings instead")
    p.add_argument("--progress", choices=("auto", "bar", "lines", "none"), default="auto")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ctrlspeak.commands.transcribe import check_available, run_batch
    from ctrlspeak.history import History
    from ctrlspeak.journal import Journal
    from ctrlspeak.models import registry

    journal = Journal()
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
    ref = registry.resolve(cfg.model)
    check_available(cfg, ref)
    results, ready, _client, _t0 = run_batch(cfg, ref, [(entry.id, journal.read(entry))], args.progress)
    result = results[0]
    if "error" in result:
        raise result["error"]
    text = result["text"]
    with History() as history:
        history.add(text, model=ready.model, duration_s=result["audio_s"], latency_s=None, source="retry")
    if not entry.complete or entry in journal.leftovers():
        journal.done(entry.id)  # it is in history now
    print(text)
    return 0
