"""Run the daemon as a per-user service: a systemd user unit on Linux, a launchd agent on macOS.

The unit text and the plist are rendered by pure functions (:func:`systemd_unit`,
:func:`launchd_plist`) so tests check both on any OS; :func:`install`, :func:`uninstall`
and :func:`status` write files (always through :func:`~ctrlspeak.fileutil.atomic_write`)
and drive ``systemctl --user`` / ``launchctl``. The platform is chosen in one place,
:func:`current_platform`.

Session environment (Linux). A user unit does not inherit the login session's
environment: the user manager starts at the first login, before any display exists.
``PassEnvironment=`` does not help, since it passes the *manager's* own environment,
which has no DISPLAY either. What works after every re-login is the manager environment
that the desktop itself refreshes: GNOME, KDE and Debian's Xsession run
``dbus-update-activation-environment --systemd`` (the same as ``systemctl --user
import-environment``) before they start ``graphical-session.target``, which is what
starts this unit. ``install`` does the same import once, so the current session works at
once. The values seen at install time are written too, but as ``CTRLSPEAK_SESSION_*``
fallbacks, not as ``DISPLAY=...``: a unit's ``Environment=`` overrides the manager's
environment, so a frozen ``XAUTHORITY`` (a new random file per login under SDDM and
startx) or ``DBUS_SESSION_BUS_ADDRESS`` (new per login with dbus-launch) would beat the
fresh value. The daemon calls :func:`apply_session_fallbacks` first thing, which fills
in only what its environment lacks.

This module is imported by the daemon: standard library only.
"""
from __future__ import annotations

import logging
import os
import plistlib
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ctrlspeak import errors
from ctrlspeak.fileutil import atomic_write

log = logging.getLogger(__name__)

PLATFORMS = ("linux", "macos")
UNIT_NAME = "ctrlspeak.service"
LAUNCHD_LABEL = "io.ctrlspeak.daemon.core"
#: the session variables the daemon needs (display, bus, audio), in the order they are written
SESSION_VARS = ("DISPLAY", "WAYLAND_DISPLAY", "XAUTHORITY", "XDG_SESSION_TYPE",
                "DBUS_SESSION_BUS_ADDRESS", "XDG_RUNTIME_DIR", "PULSE_SERVER")
#: these describe one display; a fresh one is never mixed with stale parts of another
_DISPLAY_VARS = ("DISPLAY", "WAYLAND_DISPLAY", "XAUTHORITY", "XDG_SESSION_TYPE")
FALLBACK_PREFIX = "CTRLSPEAK_SESSION_"
#: model loading (a 0.6B model on CPU, first run after boot) can take more than a minute
START_TIMEOUT_S = 300
#: exit statuses after which restarting cannot help (see ctrlspeak.errors): stop, like gunicorn's
#: "worker failed to boot", instead of looping every RestartSec
NO_RESTART_CODES = ("ERR_USAGE", "ERR_MODEL_NOT_FOUND", "ERR_MODEL_NOT_CACHED", "ERR_MODEL_LOAD",
                    "ERR_WORKER_BOOT", "ERR_CONFIG")
_COMMAND_TIMEOUT_S = 15.0
# the stop job waits for the daemon's own graceful shutdown (TimeoutStopSec=15 in the unit)
_STOP_TIMEOUT_S = 30.0


def current_platform(sys_platform: str | None = None) -> str:
    """``linux`` or ``macos``; the one place that maps ``sys.platform`` to a service manager."""
    name = sys.platform if sys_platform is None else sys_platform
    if name.startswith("linux"):
        return "linux"
    if name == "darwin":
        return "macos"
    raise errors.ServiceError(f"no service manager support for platform {name!r}",
                              hint="start `ctrlspeak run` from your desktop's autostart instead")


def daemon_argv(python: str | None = None) -> list[str]:
    # sys.executable as given, not resolved: a venv's bin/python symlink is what makes the venv active
    exe = sys.executable if python is None else python
    if not exe or not os.path.isabs(exe):
        raise errors.ServiceError(f"cannot tell the absolute path of this Python ({exe!r})",
                                  hint="run `ctrlspeak service install` with the Python that has ctrlspeak installed")
    return [exe, "-m", "ctrlspeak", "run"]


def session_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The :data:`SESSION_VARS` that are set (non-empty, one line) in ``environ``."""
    found: dict[str, str] = {}
    for name in SESSION_VARS:
        value = environ.get(name, "")
        if not value:
            continue
        if any(ord(ch) < 0x20 for ch in value):
            log.warning("%s holds control characters; not written to the service", name)
            continue
        found[name] = value
    return found


def apply_session_fallbacks(environ: MutableMapping[str, str]) -> list[str]:
    """Fill session variables missing from ``environ`` with the values recorded at install.

    Call before anything reads ``DISPLAY`` (pynput does at import). Returns the names set.
    """
    has_display = bool(environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY"))
    applied = []
    for name in SESSION_VARS:
        value = environ.get(FALLBACK_PREFIX + name)
        if not value or environ.get(name) or (has_display and name in _DISPLAY_VARS):
            continue
        environ[name] = value
        applied.append(name)
    if applied:
        log.info("session variables from the install-time fallback: %s", ", ".join(applied))
    return applied


# --- systemd ---------------------------------------------------------------------------------

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


# --- launchd ---------------------------------------------------------------------------------

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


# --- paths and commands ----------------------------------------------------------------------

def _home(environ: Mapping[str, str]) -> Path:
    return Path(environ.get("HOME") or os.path.expanduser("~"))


def unit_path(environ: Mapping[str, str] | None = None) -> Path:
    environ = os.environ if environ is None else environ
    config_home = environ.get("XDG_CONFIG_HOME", "")
    base = Path(config_home) if os.path.isabs(config_home) else _home(environ) / ".config"
    return base / "systemd" / "user" / UNIT_NAME


def plist_path(environ: Mapping[str, str] | None = None) -> Path:
    environ = os.environ if environ is None else environ
    return _home(environ) / "Library" / "LaunchAgents" / f"{LAUNCHD_LABEL}.plist"


def log_dir(environ: Mapping[str, str] | None = None) -> Path:
    environ = os.environ if environ is None else environ
    return _home(environ) / "Library" / "Logs" / "ctrlspeak"


@dataclass(frozen=True)
class CommandResult:
    argv: tuple[str, ...]
    #: 127: the program is missing; 124: it ran past its timeout
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def why(self) -> str:
        text = (self.stderr.strip() or self.stdout.strip()).splitlines()
        return text[-1] if text else f"exit status {self.returncode}"


def run_command(argv: Sequence[str], environ: Mapping[str, str], timeout: float = _COMMAND_TIMEOUT_S) -> CommandResult:
    exe = shutil.which(argv[0], path=environ.get("PATH", os.defpath))
    if exe is None:
        return CommandResult(tuple(argv), 127, "", f"{argv[0]}: command not found")
    try:
        done = subprocess.run([exe, *argv[1:]], env=dict(environ), stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return CommandResult(tuple(argv), 124, "", f"{argv[0]} did not answer within {timeout:.0f} s")
    except OSError as exc:
        return CommandResult(tuple(argv), 126, "", f"{argv[0]}: {exc.strerror}")
    return CommandResult(tuple(argv), done.returncode, done.stdout, done.stderr)


def user_manager(environ: Mapping[str, str], timeout: float = 5.0) -> tuple[bool, str]:
    """Whether ``systemctl --user`` reaches a running user manager, and why not."""
    probe = run_command(["systemctl", "--user", "show-environment"], environ, timeout=timeout)
    if probe.returncode == 127:
        return False, "systemctl is not installed (this system does not run systemd)"
    if not probe.ok:
        return False, f"no systemd user manager reachable: {probe.why()}"
    return True, "systemd user manager reachable"


def _systemctl(environ: Mapping[str, str], *args: str, timeout: float = _COMMAND_TIMEOUT_S) -> CommandResult:
    return run_command(["systemctl", "--user", *args], environ, timeout=timeout)


def _checked(result: CommandResult) -> CommandResult:
    if not result.ok:
        raise errors.ServiceError(f"`{' '.join(result.argv)}` failed: {result.why()}")
    return result


def _launchd_domain() -> str:
    return f"gui/{os.getuid()}"


def _require_platform(platform: str) -> None:
    if platform not in PLATFORMS:
        raise errors.UsageError(f"platform must be one of {', '.join(PLATFORMS)}, not {platform!r}")


_AUTOSTART_HINT = (
    "Sessions that never start graphical-session.target (startx, a bare window manager) need two lines "
    "in their autostart (e.g. ~/.xinitrc): `systemctl --user import-environment DISPLAY XAUTHORITY` "
    f"and `systemctl --user start {UNIT_NAME}`."
)


# --- install / uninstall / status ------------------------------------------------------------

def install(platform: str, environ: Mapping[str, str] | None = None, python: str | None = None) -> list[str]:
    """Write (or rewrite) the unit/agent and start it when possible; returns lines for the user."""
    environ = os.environ if environ is None else environ
    argv = daemon_argv(python)
    if platform == "macos":
        return _install_launchd(argv, environ)
    _require_platform(platform)
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
        _checked(_systemctl(environ, "import-environment", *imports.split()))
        lines.append(f"imported {imports} into the user manager")
    _checked(_systemctl(environ, "daemon-reload"))
    _checked(_systemctl(environ, "enable", UNIT_NAME))
    manager_env = _checked(_systemctl(environ, "show-environment")).stdout
    if not re.search(r"^(DISPLAY|WAYLAND_DISPLAY)=.", manager_env, re.M):
        # installed from ssh or a console: started now, the daemon would find no display
        lines.append(f"enabled {UNIT_NAME}, not started: neither this shell nor the user manager has a "
                     "display. It starts at your next graphical login, or run "
                     f"`systemctl --user start {UNIT_NAME}` from a terminal in your desktop.")
        return lines + [_AUTOSTART_HINT]
    # restart, not `enable --now`: a re-install must replace a daemon running an older unit;
    # --no-block, because Type=notify makes a blocking start wait for the model to load
    _checked(_systemctl(environ, "restart", "--no-block", UNIT_NAME))
    lines.append(f"enabled and started {UNIT_NAME} (the model loads in the background: "
                 "`ctrlspeak service status` shows when it is active)")
    return lines + [_AUTOSTART_HINT]


def _install_launchd(argv: list[str], environ: Mapping[str, str]) -> list[str]:
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
        _checked(run_command(["launchctl", "load", "-w", str(path)], environ))
    return lines + [f"loaded {LAUNCHD_LABEL}: it runs now and at every login"]


def uninstall(platform: str, environ: Mapping[str, str] | None = None) -> list[str]:
    environ = os.environ if environ is None else environ
    if platform == "macos":
        path = plist_path(environ)
        lines = []
        if shutil.which("launchctl", path=environ.get("PATH", os.defpath)) is not None:
            out = run_command(["launchctl", "bootout", f"{_launchd_domain()}/{LAUNCHD_LABEL}"], environ)
            if not out.ok and path.exists():
                out = run_command(["launchctl", "unload", "-w", str(path)], environ)
            lines.append(f"unloaded {LAUNCHD_LABEL}" if out.ok else f"{LAUNCHD_LABEL} was not loaded")
        return lines + _remove(path)
    _require_platform(platform)
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
    lines += _remove(path)
    if usable:
        _systemctl(environ, "daemon-reload")
        _systemctl(environ, "reset-failed", UNIT_NAME)
    return lines


def _remove(path: Path) -> list[str]:
    try:
        path.unlink()
    except FileNotFoundError:
        return [f"{path} was not installed"]
    except OSError as exc:
        raise errors.ServiceError(f"cannot remove {path}: {exc.strerror}") from exc
    return [f"removed {path}"]


@dataclass(frozen=True)
class ServiceStatus:
    platform: str
    path: str
    installed: bool
    #: `systemctl --user is-active` / launchd state; None when the manager cannot be asked
    active: str | None
    #: `systemctl --user is-enabled`; None when unknown (and always on macOS)
    enabled: str | None
    manager: str


def status(platform: str, environ: Mapping[str, str] | None = None) -> ServiceStatus:
    environ = os.environ if environ is None else environ
    if platform == "macos":
        path = plist_path(environ)
        active = None
        manager = "launchctl not found"
        if shutil.which("launchctl", path=environ.get("PATH", os.defpath)) is not None:
            printed = run_command(["launchctl", "print", f"{_launchd_domain()}/{LAUNCHD_LABEL}"], environ)
            manager = "launchd"
            found = re.search(r"^\s*state = (\S+)", printed.stdout, re.M)
            active = (found.group(1) if found else "loaded") if printed.ok else "not loaded"
        return ServiceStatus(platform, str(path), path.is_file(), active, None, manager)
    _require_platform(platform)
    path = unit_path(environ)
    usable, why = user_manager(environ)
    # is-enabled reads unit files, so it answers without a running manager
    enabled = _systemctl(environ, "is-enabled", UNIT_NAME).stdout.strip() or None
    active = (_systemctl(environ, "is-active", UNIT_NAME).stdout.strip() or None) if usable else None
    return ServiceStatus(platform, str(path), path.is_file(), active, enabled, why)
