"""``ctrlspeak doctor``: which parts of dictation work on this machine, and what to fix.

Each probe is a small function returning a :class:`Check`; tests call them one by one
with a controlled environment (``env``: the variables and PATH to judge by). Probes never
raise and never wait more than :data:`PROBE_TIMEOUT_S`: anything that could block (the X
server, D-Bus, the audio system) runs in a child process that is killed at the deadline.

Exit status of the command: 1 when a *required* part is missing (microphone, clipboard,
a paste tool, a model, torch, and the global hotkey unless the session is Wayland, where
a desktop shortcut to ``ctrlspeak toggle`` replaces it); 0 otherwise, warnings included.

The probes live by what they check: :mod:`~ctrlspeak.doctor.desktop` (hotkey, evdev,
clipboard, paste), :mod:`~ctrlspeak.doctor.bus` (notifications, tray), :mod:`~ctrlspeak.doctor.microphone`
and :mod:`~ctrlspeak.doctor.system` (service, model, compute), on the shared ground of
:mod:`~ctrlspeak.doctor.probe`. This package runs them all and renders the report.

Daemon side: never imports torch (compute is judged by :mod:`ctrlspeak.compute`).
"""
from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict

from ctrlspeak.doctor.bus import check_notifications, check_tray, session_bus_env
from ctrlspeak.doctor.desktop import (
    check_clipboard, check_evdev, check_hotkey, check_paste, parse_xdpyinfo_extensions, x_server_facts,
)
from ctrlspeak.doctor.microphone import LEVEL_DEADLINE_S, LEVEL_SECONDS, check_microphone, measure_input
from ctrlspeak.doctor.probe import MISSING, OK, PROBE_TIMEOUT_S, WARN, Check, Session, detect_session, given_env
from ctrlspeak.doctor.system import check_compute, check_model, check_service

#: what ``from ctrlspeak import doctor`` callers use (the command, tests)
__all__ = [
    "LEVEL_DEADLINE_S", "LEVEL_SECONDS", "MISSING", "OK", "PROBES", "PROBE_TIMEOUT_S", "WARN", "Check", "Session",
    "check_clipboard", "check_compute", "check_evdev", "check_hotkey", "check_microphone", "check_model",
    "check_notifications",
    "check_paste", "check_service", "check_tray", "detect_session", "exit_status", "format_table",
    "measure_input", "parse_xdpyinfo_extensions", "run_checks", "session_bus_env", "to_json", "x_server_facts",
]

PROBES: tuple[tuple[str, Callable[[Mapping[str, str]], Check]], ...] = (
    ("hotkey", check_hotkey), ("evdev", check_evdev), ("microphone", check_microphone), ("clipboard", check_clipboard),
    ("paste", check_paste), ("notifications", check_notifications), ("tray", check_tray),
    ("service", check_service), ("model", check_model), ("compute", check_compute),
)


def _guarded(name: str, probe: Callable[[Mapping[str, str]], Check], env: Mapping[str, str]) -> Check:
    try:
        return probe(env)
    except Exception as exc:  # noqa: BLE001 - a doctor reports a broken probe as a row, it does not crash
        return Check(name, WARN, f"the check itself failed: {type(exc).__name__}: {exc}",
                     "please report this as a ctrlspeak bug", False)


def run_checks(env: Mapping[str, str] | None = None) -> list[Check]:
    """Every probe, concurrently (they mostly wait on children), in :data:`PROBES` order."""
    from concurrent.futures import ThreadPoolExecutor

    env = dict(given_env(env))
    with ThreadPoolExecutor(max_workers=len(PROBES), thread_name_prefix="doctor") as pool:
        futures = [pool.submit(_guarded, name, probe, env) for name, probe in PROBES]
        return [f.result() for f in futures]


def exit_status(checks: Sequence[Check]) -> int:
    return 1 if any(c.required and c.status == MISSING for c in checks) else 0


def format_table(checks: Sequence[Check]) -> str:
    width = max(len("ITEM"), *(len(c.name) for c in checks))
    lines = [f"{'ITEM':<{width}}  STATUS   DETAIL"]
    for c in checks:
        lines.append(f"{c.name:<{width}}  {c.status:<7}  {c.detail}")
        if c.fix:
            lines.append(f"{'':<{width}}  {'':<7}  -> {c.fix}")
    missing = [c.name for c in checks if c.required and c.status == MISSING]
    lines.append("")
    lines.append(f"required parts missing: {', '.join(missing)}" if missing else "all required parts are present")
    return "\n".join(lines)


def to_json(checks: Sequence[Check]) -> str:
    return json.dumps({"ok": exit_status(checks) == 0, "checks": [asdict(c) for c in checks]}, indent=2)
