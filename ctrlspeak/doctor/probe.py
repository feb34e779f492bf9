"""What every doctor check shares: the :class:`Check` row, the kind of session, tools on
PATH, and child processes killed at the probe's deadline.

A probe never raises and never waits more than :data:`PROBE_TIMEOUT_S`: anything that could
block (the X server, D-Bus, the audio system) runs in a child that is killed at the deadline.
"""
from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ctrlspeak.service import CommandResult, run_command

OK, WARN, MISSING = "ok", "warn", "missing"
PROBE_TIMEOUT_S = 3.0


@dataclass(frozen=True)
class Check:
    name: str
    #: "ok", "warn" (works partly, optional part absent, or cannot tell) or "missing"
    status: str
    detail: str
    #: what to install or change; empty when nothing is needed
    fix: str = ""
    #: a missing required part makes `ctrlspeak doctor` exit 1
    required: bool = False


@dataclass(frozen=True)
class Session:
    #: "x11", "wayland", "macos" or "none" (no display at all)
    kind: str
    display: str | None = None
    wayland_display: str | None = None


def given_env(env: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if env is None else env


def detect_session(env: Mapping[str, str] | None = None, sys_platform: str | None = None) -> Session:
    env = given_env(env)
    if (sys.platform if sys_platform is None else sys_platform) == "darwin":
        return Session("macos")
    display, wayland = env.get("DISPLAY") or None, env.get("WAYLAND_DISPLAY") or None
    if wayland or env.get("XDG_SESSION_TYPE") == "wayland":
        return Session("wayland", display, wayland)
    if display:
        return Session("x11", display)
    return Session("none")


def which(name: str, env: Mapping[str, str]) -> str | None:
    return shutil.which(name, path=env.get("PATH", os.defpath))


def new_deadline() -> float:
    return time.monotonic() + PROBE_TIMEOUT_S


def time_left(deadline: float | None) -> float:
    """Seconds a child may still run, so that one probe stays within PROBE_TIMEOUT_S in all."""
    return PROBE_TIMEOUT_S if deadline is None else max(0.2, deadline - time.monotonic())


def run_python(code: str, env: Mapping[str, str], *args: str, deadline: float | None = None) -> CommandResult:
    """Run ``code`` in a child Python (same interpreter), killed at the deadline."""
    return run_command([sys.executable, "-c", code, *args], env, timeout=time_left(deadline))


def first_found(names: Sequence[str], env: Mapping[str, str]) -> str | None:
    return next((name for name in names if which(name, env)), None)
