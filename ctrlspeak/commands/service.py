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
    actions.add_parser("install", help="write the unit/agent (again) and start it when possible")
    actions.add_parser("uninstall", help="stop and disable the service, then remove its file")
    st = actions.add_parser("status", help="is the unit installed, enabled, running?")
    st.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    platform = args.platform or service.current_platform()
    action = getattr(args, "service_command", None)
    if action == "install":
        _print(service.install(platform))
        return 0
    if action == "uninstall":
        _print(service.uninstall(platform))
        return 0
    if action == "status":
        return _status(platform, getattr(args, "json", False))
    raise errors.UsageError("say what to do: `ctrlspeak service install|uninstall|status`")


def _print(lines: list[str]) -> None:
    for line in lines:
        print(line)


def _status(platform: str, as_json: bool) -> int:
    st = service.status(platform)
    if as_json:
        print(json.dumps(asdict(st), indent=2))
        return 0
    print(f"unit file: {st.path} ({'installed' if st.installed else 'not installed'})")
    print(f"enabled:   {st.enabled or 'unknown'}")
    print(f"active:    {st.active or 'unknown'} ({st.manager})")
    return 0
