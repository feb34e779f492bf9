"""``ctrlspeak doctor``: check the hotkey, microphone, clipboard, paste, model... on this machine.

Exit status: 1 when a required part is missing, 0 otherwise (warnings included).
"""
from __future__ import annotations

import argparse

from ctrlspeak import doctor


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "doctor", help="check which parts of dictation work here, and what to install",
        description="Probe the display, microphone (a 0.5 s level check; nothing is kept), clipboard, "
                    "paste tool, notifications, tray, service manager, model cache and compute device.",
        epilog="Exit status: 1 when a required part is missing, 0 otherwise.",
    )
    p.add_argument("--json", action="store_true", help="print the checks as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    checks = doctor.run_checks()
    print(doctor.to_json(checks) if getattr(args, "json", False) else doctor.format_table(checks))
    return doctor.exit_status(checks)
