"""Setup hints said once per login, not once per daemon run.

A restarted daemon (a crash, a config change, `systemctl --user restart`) would otherwise tell
the person again what to install. The marker lives under ``$XDG_RUNTIME_DIR``, which the system
creates at login and empties at logout, so a new login hears it once more. Without a runtime
directory (macOS, some containers) the caller's own per-run memory is all there is.
"""
from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path

FILENAME = "told-hints"


def _marker(env: Mapping[str, str]) -> Path | None:
    runtime = env.get("XDG_RUNTIME_DIR", "")
    return Path(runtime, "ctrlspeak", FILENAME) if runtime and os.path.isdir(runtime) else None


def _key(hint: str) -> str:
    return hashlib.sha256(hint.encode()).hexdigest()[:16]


def told_before(env: Mapping[str, str], hint: str) -> bool:
    marker = _marker(env)
    try:
        return marker is not None and _key(hint) in marker.read_text().split()
    except OSError:
        return False


def mark_told(env: Mapping[str, str], hint: str) -> None:
    marker = _marker(env)
    if marker is None:
        return
    try:
        marker.parent.mkdir(mode=0o700, exist_ok=True)
        with marker.open("a") as out:
            out.write(_key(hint) + "\n")
    except OSError:
        pass  # then the next run says it again: a repeated hint, nothing lost
