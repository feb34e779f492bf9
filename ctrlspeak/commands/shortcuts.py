"""``ctrlspeak shortcuts``: the exact key binding to add on this desktop (``--all``: every desktop)."""
from __future__ import annotations

import argparse
import os


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "shortcuts", help="print the key binding to add for this desktop (sway, Hyprland, GNOME, KDE)",
        description="Where ctrlspeak cannot read keys itself (Wayland), the desktop hands them over: "
                    "this prints the lines or commands that bind the triple tap (sway) or a chord "
                    "running `ctrlspeak toggle` (elsewhere). Nothing is changed.",
    )
    p.add_argument("--all", action="store_true", help="print the bindings for every desktop")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ctrlspeak.desktop.shortcuts import render

    print(render(os.environ, all_desktops=args.all), end="")
    return 0
