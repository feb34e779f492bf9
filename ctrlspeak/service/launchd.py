"""The launchd agent (macOS): its plist, its paths, and ``launchctl`` to load, unload and inspect it.

:func:`launchd_plist` renders the plist as a pure function, so tests check it on any OS.
"""
from __future__ import annotations

import logging
import os
import plistlib
import re
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

from ctrlspeak.fileutil import atomic_write
from ctrlspeak.service.common import ServiceStatus, checked, home, remove, run_command

log = logging.getLogger(__name__)

LAUNCHD_LABEL = "io.ctrlspeak.daemon.core"


def launchd_plist(exec_argv: Sequence[str], env: Mapping[str, str], log_dir: str | os.PathLike[str],
                  label: str = LAUNCHD_LABEL) -> bytes:
    """The LaunchAgent plist (XML)."""
    logs = Path(log_dir)
    plist = {
        "Label": label,
        "ProgramArguments": list(exec_argv),
        "RunAtLoad": True,
        # SuccessfulExit=false: a crash restarts the daemon, a clean exit (`ctrlspeak quit`,
        # or a config error reported and exited) stays stopped until the next login
        "KeepAlive": {"SuccessfulExit": False},
        "ThrottleInterval": 10,
        # Interactive: the hotkey and the paste must not be throttled like a background job
        "ProcessType": "Interactive",
        "LimitLoadToSessionType": "Aqua",
        "EnvironmentVariables": dict(env),
        "StandardOutPath": str(logs / "daemon.out.log"),
        "StandardErrorPath": str(logs / "daemon.err.log"),
    }
    return plistlib.dumps(plist, fmt=plistlib.FMT_XML, sort_keys=True)


def launchd_path_value(environ: Mapping[str, str], python: str) -> str:
    """PATH for the agent: launchd's default (/usr/bin:/bin:/usr/sbin:/sbin) lacks Homebrew."""
    parts = [os.path.dirname(python), *environ.get("PATH", "").split(os.pathsep),
             "/opt/homebrew/bin", "/usr/local/bin", "/usr/bin", "/bin", "/usr/sbin", "/sbin"]
    return os.pathsep.join(dict.fromkeys(p for p in parts if p and os.path.isabs(p)))


def plist_path(environ: Mapping[str, str] | None = None) -> Path:
    environ = os.environ if environ is None else environ
    return home(environ) / "Library" / "LaunchAgents" / f"{LAUNCHD_LABEL}.plist"


def log_dir(environ: Mapping[str, str] | None = None) -> Path:
    environ = os.environ if environ is None else environ
    return home(environ) / "Library" / "Logs" / "ctrlspeak"


def _launchd_domain() -> str:
    return f"gui/{os.getuid()}"


# --- install / uninstall / status ------------------------------------------------------------

def install(argv: list[str], environ: Mapping[str, str]) -> list[str]:
    """Write (or rewrite) the agent and load it when possible; returns lines for the user."""
    path, logs = plist_path(environ), log_dir(environ)
    data = launchd_plist(argv, {"PATH": launchd_path_value(environ, argv[0])}, logs)
    logs.mkdir(parents=True, exist_ok=True)
    atomic_write(path, data, mode=0o644, dir_mode=0o755)
    lines = [f"wrote {path}", f"logs go to {logs}"]
    domain = _launchd_domain()
    if shutil.which("launchctl", path=environ.get("PATH", os.defpath)) is None:
        return lines + ["not loaded: launchctl not found. On the Mac, run:",
                        f"  launchctl bootstrap {domain} {path}"]
    # an agent that is already loaded refuses a second bootstrap: unload the old one first
    run_command(["launchctl", "bootout", f"{domain}/{LAUNCHD_LABEL}"], environ)
    run_command(["launchctl", "enable", f"{domain}/{LAUNCHD_LABEL}"], environ)
    boot = run_command(["launchctl", "bootstrap", domain, str(path)], environ)
    if not boot.ok:
        log.info("launchctl bootstrap failed (%s); trying launchctl load -w", boot.why())
        checked(run_command(["launchctl", "load", "-w", str(path)], environ))
    return lines + [f"loaded {LAUNCHD_LABEL}: it runs now and at every login"]


def uninstall(environ: Mapping[str, str]) -> list[str]:
    path = plist_path(environ)
    lines = []
    if shutil.which("launchctl", path=environ.get("PATH", os.defpath)) is not None:
        out = run_command(["launchctl", "bootout", f"{_launchd_domain()}/{LAUNCHD_LABEL}"], environ)
        if not out.ok and path.exists():
            out = run_command(["launchctl", "unload", "-w", str(path)], environ)
        lines.append(f"unloaded {LAUNCHD_LABEL}" if out.ok else f"{LAUNCHD_LABEL} was not loaded")
    return lines + remove(path)


def status(environ: Mapping[str, str]) -> ServiceStatus:
    path = plist_path(environ)
    active = None
    manager = "launchctl not found"
    if shutil.which("launchctl", path=environ.get("PATH", os.defpath)) is not None:
        printed = run_command(["launchctl", "print", f"{_launchd_domain()}/{LAUNCHD_LABEL}"], environ)
        manager = "launchd"
        found = re.search(r"^\s*state = (\S+)", printed.stdout, re.M)
        active = (found.group(1) if found else "loaded") if printed.ok else "not loaded"
    return ServiceStatus("macos", str(path), path.is_file(), active, None, manager)
