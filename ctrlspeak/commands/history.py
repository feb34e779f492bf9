"""``ctrlspeak history``: the recent transcripts, newest first."""
from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from ctrlspeak.history import Entry, History


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("history", help="show recent transcripts (newest first)")
    p.add_argument("--limit", "-n", type=_positive_int, default=20, metavar="N",
                   help="how many entries to show (default: 20)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    with History() as history:
        entries = history.recent(args.limit)
    if args.json:
        print(json.dumps({"path": str(history.path), "entries": [_as_dict(e) for e in entries]},
                         indent=2, ensure_ascii=False))
        return 0
    if not entries:
        print(f"no transcripts yet ({history.path})", file=sys.stderr)
        return 0
    for entry in entries:
        print(_line(entry))
    return 0


def _as_dict(entry: Entry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "created_at": entry.created_at,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(entry.created_at)),
        "text": entry.text,
        # the model's own text: the same as text unless the text pipeline changed it
        "raw_text": entry.raw,
        "model": entry.model,
        "duration_s": entry.duration_s,
        "latency_s": entry.latency_s,
        "source": entry.source,
    }


def _line(entry: Entry) -> str:
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(entry.created_at))
    latency = "-" if entry.latency_s is None else f"{entry.latency_s:.2f}s"
    text = " ".join(entry.text.splitlines())  # one entry, one line
    return f"{when}  {entry.duration_s:5.1f}s  {latency:>6}  {entry.model}  {text}"


def _positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return number
