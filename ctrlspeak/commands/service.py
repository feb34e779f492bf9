"""``ctrlspeak service install|uninstall|status``: run the daemon at login."""
from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from ctrlspeak import errors, service


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "service", help="run the daemon at login (systemd user unit / launchd agent)",
        description="Install, remove or inspect the per-user service that runs `ctrlspeak run` at login.",
    )
    # hidden: lets tests (and curious people) render the other platform's files
    p.add_argument("--platform", choices=service.PLATFORMS, default=None, help=argparse.SUPPRESS)
    actions = p.add_subparsers(dest="service_command", metavar="ACTION")
    actions.add_parser("install", help="write the unit/agent (again) and start it when possible") \
        .set_defaults(func=install)
    actions.add_parser("uninstall", help="stop and disable the service, then remove its file") \
        .set_defaults(func=uninstall)
    st = actions.add_parser("status", help="is the unit installed, enabled, running?")
    st.add_argument("--json", action="store_true")
    st.set_defaults(func=status)
    p.set_defaults(func=no_action)


def install(args: argparse.Namespace) -> int:
    _print(service.install(_platform(args)))
    return 0


def uninstall(args: argparse.Namespace) -> int:
    _print(service.uninstall(_platform(args)))
    return 0


def status(args: argparse.Namespace) -> int:
    st = service.status(_platform(args))
    if args.json:
        print(json.dumps(asdict(st), indent=2))
        return 0
    print(f"unit file: {st.path} ({'installed' if st.installed else 'not installed'})")
    print(f"enabled:   {st.enabled or 'unknown'}")
    print(f"active:    {st.active or 'unknown'} ({st.manager})")
    return 0


def no_action(args: argparse.Namespace) -> int:
    raise errors.UsageError("say what to do: `ctrlspeak service install|uninstall|status`")


def _platform(args: argparse.Namespace) -> str:
    return args.platform or service.current_platform()


def _print(lines: list[str]) -> None:
    for line in lines:
        print(line)
