"""Run the daemon as a per-user service: a systemd user unit on Linux, a launchd agent on macOS.

The unit text and the plist are rendered by pure functions
(:func:`~ctrlspeak.service.systemd.systemd_unit`, :func:`~ctrlspeak.service.launchd.launchd_plist`)
so tests check both on any OS; :func:`install`, :func:`uninstall` and :func:`status` write
files (always through :func:`~ctrlspeak.fileutil.atomic_write`) and drive ``systemctl --user``
/ ``launchctl``. The platform is chosen in one place, :func:`current_platform`.

- :mod:`~ctrlspeak.service.systemd`: the user unit and ``systemctl --user``;
- :mod:`~ctrlspeak.service.launchd`: the agent and ``launchctl``;
- :mod:`~ctrlspeak.service.session`: the login session's variables (why the unit holds
  them as fallbacks only, and how the daemon applies them);
- :mod:`~ctrlspeak.service.common`: what both share (commands with a timeout, the status).

This package is imported by the daemon: standard library only.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Mapping

from ctrlspeak import errors
from ctrlspeak.service import launchd, systemd
from ctrlspeak.service.common import CommandResult, ServiceStatus, daemon_argv, run_command
from ctrlspeak.service.launchd import LAUNCHD_LABEL, launchd_path_value, launchd_plist, log_dir, plist_path
from ctrlspeak.service.session import FALLBACK_PREFIX, SESSION_VARS, apply_session_fallbacks, session_environment
from ctrlspeak.service.systemd import (
    NO_RESTART_CODES, START_TIMEOUT_S, UNIT_NAME, systemd_exec_line, systemd_unit, systemd_word, unit_path,
    user_manager,
)

#: what ``from ctrlspeak import service`` callers use: the commands, doctor, the daemon and tests
__all__ = [
    "FALLBACK_PREFIX", "LAUNCHD_LABEL", "NO_RESTART_CODES", "PLATFORMS", "SESSION_VARS", "START_TIMEOUT_S",
    "UNIT_NAME", "CommandResult", "ServiceStatus", "apply_session_fallbacks", "current_platform", "daemon_argv",
    "install", "launchd_path_value", "launchd_plist", "log_dir", "plist_path", "run_command",
    "session_environment", "status", "systemd_exec_line", "systemd_unit", "systemd_word", "uninstall",
    "unit_path", "user_manager",
]

PLATFORMS = ("linux", "macos")


def current_platform(sys_platform: str | None = None) -> str:
    """``linux`` or ``macos``; the one place that maps ``sys.platform`` to a service manager."""
    name = sys.platform if sys_platform is None else sys_platform
    if name.startswith("linux"):
        return "linux"
    if name == "darwin":
        return "macos"
    raise errors.ServiceError(f"no service manager support for platform {name!r}",
                              hint="start `ctrlspeak run` from your desktop's autostart instead")


def _require_platform(platform: str) -> None:
    if platform not in PLATFORMS:
        raise errors.UsageError(f"platform must be one of {', '.join(PLATFORMS)}, not {platform!r}")


def install(platform: str, environ: Mapping[str, str] | None = None, python: str | None = None) -> list[str]:
    """Write (or rewrite) the unit/agent and start it when possible; returns lines for the user."""
    environ = os.environ if environ is None else environ
    argv = daemon_argv(python)
    if platform == "macos":
        return launchd.install(argv, environ)
    _require_platform(platform)
    return systemd.install(argv, environ)


def uninstall(platform: str, environ: Mapping[str, str] | None = None) -> list[str]:
    environ = os.environ if environ is None else environ
    if platform == "macos":
        return launchd.uninstall(environ)
    _require_platform(platform)
    return systemd.uninstall(environ)


def status(platform: str, environ: Mapping[str, str] | None = None) -> ServiceStatus:
    environ = os.environ if environ is None else environ
    if platform == "macos":
        return launchd.status(environ)
    _require_platform(platform)
    return systemd.status(environ)
