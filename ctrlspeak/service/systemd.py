"""The systemd user unit (Linux): its text, its path, and ``systemctl --user`` to install,
remove and inspect it.

:func:`systemd_unit` renders the unit as a pure function, so tests check it on any OS.
The session variables written into it are fallbacks only: see :mod:`ctrlspeak.service.session`.
"""
from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from ctrlspeak import errors
from ctrlspeak.fileutil import atomic_write
from ctrlspeak.service.common import COMMAND_TIMEOUT_S, CommandResult, ServiceStatus, checked, home, remove, run_command
from ctrlspeak.service.session import FALLBACK_PREFIX, SESSION_VARS, session_environment

UNIT_NAME = "ctrlspeak.service"
#: model loading (a 0.6B model on CPU, first run after boot) can take more than a minute
START_TIMEOUT_S = 300
#: exit statuses after which restarting cannot help (see ctrlspeak.errors): stop, like gunicorn's
#: "worker failed to boot", instead of looping every RestartSec
NO_RESTART_CODES = ("ERR_USAGE", "ERR_MODEL_NOT_FOUND", "ERR_MODEL_NOT_CACHED", "ERR_MODEL_LOAD",
                    "ERR_WORKER_BOOT", "ERR_CONFIG")
# the stop job waits for the daemon's own graceful shutdown (TimeoutStopSec=15 in the unit)
_STOP_TIMEOUT_S = 30.0

_PLAIN_WORD = re.compile(r"[A-Za-z0-9_@%$+=:,./-]+")


def _c_escape(text: str) -> str:
    out = []
    for ch in text:
        if ch in '\\"':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    return "".join(out)


def systemd_word(word: str, *, executable: bool = False) -> str:
    """One command-line word as systemd reads it back unchanged.

    ``%`` starts a specifier everywhere; ``$`` starts a variable in the arguments but not
    in the executable path (checked with ``systemd-analyze verify``: there ``$$`` stays
    two characters). Anything beyond plain characters is double-quoted with C escapes.
    """
    text = word.replace("%", "%%")
    if not executable:
        text = text.replace("$", "$$")
    if word == ";":
        return "\\;"  # a lone ';' separates commands
    if _PLAIN_WORD.fullmatch(text):
        return text
    return f'"{_c_escape(text)}"'


def systemd_exec_line(argv: Sequence[str]) -> str:
    if not argv or not os.path.isabs(argv[0]):
        raise errors.ServiceError(f"ExecStart needs an absolute executable path, not {list(argv)!r}")
    if any(ch in "\\\"'" or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in argv[0]):
        # systemd refuses these outright ("Executable name contains special characters")
        raise errors.ServiceError(
            f"systemd cannot run an executable whose path holds quotes, backslashes or control characters: {argv[0]!r}",
            hint="install ctrlspeak into a Python (or venv) under a plainer path, then run `ctrlspeak service install` again",
        )
    return " ".join([systemd_word(argv[0], executable=True)] + [systemd_word(a) for a in argv[1:]])


def systemd_unit(exec_argv: Sequence[str], env: Mapping[str, str]) -> str:
    """The user unit text. ``env`` holds the install-time session variables (see module doc)."""
    no_restart = " ".join(str(errors.info_for(code).exit_status) for code in NO_RESTART_CODES)
    env_lines = "".join(
        f'Environment="{_c_escape(FALLBACK_PREFIX + name + "=" + value).replace("%", "%%")}"\n'
        for name, value in env.items()
    )
    return f"""\
# Written by `ctrlspeak service install`; running it again rewrites this file,
# `ctrlspeak service uninstall` removes it. Edits belong in a drop-in (systemctl --user edit).
[Unit]
Description=ctrlspeak dictation daemon (triple-tap Ctrl, speak, paste)
# The hotkey listener, clipboard and paste tools need the display: start once the graphical
# session is up, stop with it at logout.
After=graphical-session.target
PartOf=graphical-session.target
# Restart=on-failure with RestartSec=2 would never reach systemd's default limit (5 in 10 s).
StartLimitIntervalSec=120
StartLimitBurst=5

[Service]
# READY=1 comes only after the transcription worker has loaded its model; only the daemon
# itself may send it, not the worker that inherits NOTIFY_SOCKET.
Type=notify
NotifyAccess=main
ExecStart={systemd_exec_line(exec_argv)}
Restart=on-failure
RestartSec=2
# a bad config or a missing model: restarting cannot help, so stop and let `status` tell
RestartPreventExitStatus={no_restart}
TimeoutStartSec={START_TIMEOUT_S}
TimeoutStopSec=15
# Install-time session values, used by the daemon only for variables that the user manager's
# environment lacks (a fresh login's values always win).
{env_lines}
[Install]
# graphical-session.target, not default.target: default.target is reached at any login (a
# console or ssh one too) and before the desktop has imported DISPLAY, so the daemon would
# start without a display and burn its restart limit. Desktops start graphical-session.target
# after importing their environment; others: see `ctrlspeak service install`'s output.
WantedBy=graphical-session.target
"""


# --- paths and commands ----------------------------------------------------------------------

def unit_path(environ: Mapping[str, str] | None = None) -> Path:
    environ = os.environ if environ is None else environ
    config_home = environ.get("XDG_CONFIG_HOME", "")
    base = Path(config_home) if os.path.isabs(config_home) else home(environ) / ".config"
    return base / "systemd" / "user" / UNIT_NAME


def user_manager(environ: Mapping[str, str], timeout: float = 5.0) -> tuple[bool, str]:
    """Whether ``systemctl --user`` reaches a running user manager, and why not."""
    probe = run_command(["systemctl", "--user", "show-environment"], environ, timeout=timeout)
    if probe.returncode == 127:
        return False, "systemctl is not installed (this system does not run systemd)"
    if not probe.ok:
        return False, f"no systemd user manager reachable: {probe.why()}"
    return True, "systemd user manager reachable"


def _systemctl(environ: Mapping[str, str], *args: str, timeout: float = COMMAND_TIMEOUT_S) -> CommandResult:
    return run_command(["systemctl", "--user", *args], environ, timeout=timeout)


_AUTOSTART_HINT = (
    "Sessions that never start graphical-session.target (startx, a bare window manager) need two lines "
    "in their autostart (e.g. ~/.xinitrc): `systemctl --user import-environment DISPLAY XAUTHORITY` "
    f"and `systemctl --user start {UNIT_NAME}`."
)


# --- install / uninstall / status ------------------------------------------------------------

def install(argv: list[str], environ: Mapping[str, str]) -> list[str]:
    """Write (or rewrite) the unit and start it when possible; returns lines for the user."""
    session = session_environment(environ)
    path = unit_path(environ)
    atomic_write(path, systemd_unit(argv, session).encode("utf-8"), mode=0o644, dir_mode=0o755)
    lines = [f"wrote {path}"]
    imports = " ".join(name for name in SESSION_VARS if name != "XDG_RUNTIME_DIR" and name in session)
    # in the session the variables may differ from here (an ssh login): name them all, unset ones are skipped
    manual = ["systemctl --user import-environment DISPLAY XAUTHORITY WAYLAND_DISPLAY DBUS_SESSION_BUS_ADDRESS XDG_SESSION_TYPE",
              "systemctl --user daemon-reload", f"systemctl --user enable --now {UNIT_NAME}"]
    usable, why = user_manager(environ)
    if not usable:
        # enable only creates the WantedBy symlink: it works without a running manager
        enabled = _systemctl(environ, "enable", UNIT_NAME)
        if enabled.returncode == 127:
            return lines + [f"not enabled: {why}.",
                            f"Start `{' '.join(argv)}` from your desktop's autostart instead."]
        if enabled.ok:
            lines.append(f"enabled {UNIT_NAME}: it starts with your next graphical session")
        else:
            lines.append(f"not enabled: {enabled.why()}")
        lines += [f"not started: {why}.", "To start it now, run these in a terminal of your graphical session:"]
        lines += [f"  {cmd}" for cmd in manual]
        return lines + [_AUTOSTART_HINT]
    if imports:
        checked(_systemctl(environ, "import-environment", *imports.split()))
        lines.append(f"imported {imports} into the user manager")
    checked(_systemctl(environ, "daemon-reload"))
    checked(_systemctl(environ, "enable", UNIT_NAME))
    manager_env = checked(_systemctl(environ, "show-environment")).stdout
    if not re.search(r"^(DISPLAY|WAYLAND_DISPLAY)=.", manager_env, re.M):
        # installed from ssh or a console: started now, the daemon would find no display
        lines.append(f"enabled {UNIT_NAME}, not started: neither this shell nor the user manager has a "
                     "display. It starts at your next graphical login, or run "
                     f"`systemctl --user start {UNIT_NAME}` from a terminal in your desktop.")
        return lines + [_AUTOSTART_HINT]
    # restart, not `enable --now`: a re-install must replace a daemon running an older unit;
    # --no-block, because Type=notify makes a blocking start wait for the model to load
    checked(_systemctl(environ, "restart", "--no-block", UNIT_NAME))
    lines.append(f"enabled and started {UNIT_NAME} (the model loads in the background: "
                 "`ctrlspeak service status` shows when it is active)")
    return lines + [_AUTOSTART_HINT]


def uninstall(environ: Mapping[str, str]) -> list[str]:
    path = unit_path(environ)
    usable, why = user_manager(environ)
    lines = []
    if usable:
        stopped = _systemctl(environ, "disable", "--now", UNIT_NAME, timeout=_STOP_TIMEOUT_S)
        lines.append(f"stopped and disabled {UNIT_NAME}" if stopped.ok else f"disable --now: {stopped.why()}")
    else:
        _systemctl(environ, "disable", UNIT_NAME)
        lines.append(f"not stopped: {why}. If it still runs in your session: systemctl --user stop {UNIT_NAME}")
    # `disable` removes the WantedBy symlinks; without systemctl they would dangle
    for link in path.parent.glob(f"*.wants/{UNIT_NAME}"):
        if link.is_symlink():
            link.unlink()
    lines += remove(path)
    if usable:
        _systemctl(environ, "daemon-reload")
        _systemctl(environ, "reset-failed", UNIT_NAME)
    return lines


def status(environ: Mapping[str, str]) -> ServiceStatus:
    path = unit_path(environ)
    usable, why = user_manager(environ)
    # is-enabled reads unit files, so it answers without a running manager
    enabled = _systemctl(environ, "is-enabled", UNIT_NAME).stdout.strip() or None
    active = (_systemctl(environ, "is-active", UNIT_NAME).stdout.strip() or None) if usable else None
    return ServiceStatus("linux", str(path), path.is_file(), active, enabled, why)
