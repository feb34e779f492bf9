"""A private headless sway session for end-to-end tests on a real Wayland compositor.

    SwaySession (one temp dir; every process below is a child it started, and stops by PID)
     ├─ sway -c DIR/sway.conf     as uid 4242 (sway refuses root), headless + pixman, no XWayland;
     │                            binds the release of each Ctrl to `nop ctrlspeak-tap`
     ├─ GtkTarget                 gtk_target.py under the system python3 (it has gi): a TextView
     │                            that dumps its buffer to a file every 100 ms
     ├─ FootTarget                foot running `cat > OUT` in a raw tty: what a terminal receives
     └─ spawn(...)                anything else a test starts (wl-copy, the daemon under test)

Clients run as root with `SwaySession.env`: XDG_RUNTIME_DIR, WAYLAND_DISPLAY and SWAYSOCK as
sway created them (the names are discovered, not assumed), no DISPLAY. The measured recipe and its
traps are in /work/shared/notes/wayland-testing.md; the ones that shape this code are noted where
they bite. Plain Python: pytest is imported only by `require()` (tests.desktop.harness).
"""
from __future__ import annotations

import itertools
import json
import logging
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from ctrlspeak.desktop.compositor_keys import BINDING_LINES
from tests.desktop.harness import DesktopError, _tail, stop_process, wait_until

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
#: the unprivileged uid sway runs as when we are root (sway refuses root); no passwd entry is needed.
#: Not root, sway simply runs as us.
SWAY_UID = 4242 if os.geteuid() == 0 else os.geteuid()
SYSTEM_PYTHON = "/usr/bin/python3"  # Debian's python3-gi lives here, not in the venv
SWAY_TOOLS = ("sway", "swaymsg", "setpriv", "wtype", "wl-copy", "wl-paste", SYSTEM_PYTHON)
# the bindings are the very lines `ctrlspeak shortcuts` tells sway users to add
_SWAY_CONFIG = """output HEADLESS-1 resolution 1280x800
xwayland disable
default_border normal
""" + "".join(line + "\n" for line in BINDING_LINES)


class SwaySession:
    """sway headless as uid 4242 plus the clients a test starts; a context manager."""

    def __init__(self, *, timeout: float = 30.0, extra_config: str = "", keep_workdir: bool = False) -> None:
        self.timeout = timeout
        self.extra_config = extra_config
        self.keep_workdir = keep_workdir
        self.workdir: Path | None = None
        self.logs: Path | None = None
        self.runtime: Path | None = None
        self.env: dict[str, str] = {}
        self.startup_s = 0.0
        self._sway: subprocess.Popen | None = None
        self._procs: list[tuple[str, subprocess.Popen]] = []
        self._ids = itertools.count(1)

    def __enter__(self) -> SwaySession:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        began = time.monotonic()
        # /tmp keeps the socket paths short (AF_UNIX caps them at 108 bytes); 0755 so uid 4242 can
        # read its config and reach its runtime dir.
        self.workdir = Path(tempfile.mkdtemp(prefix="ctrlspeak-sway-", dir="/tmp"))
        self.workdir.chmod(0o755)
        self.logs = self.workdir / "logs"
        self.logs.mkdir()
        self.runtime = self.workdir / "runtime"
        home = self.workdir / "home"
        for folder in (self.runtime, home):
            folder.mkdir(mode=0o700)
            if SWAY_UID != os.geteuid():
                os.chown(folder, SWAY_UID, SWAY_UID)
        config = self.workdir / "sway.conf"
        config.write_text(_SWAY_CONFIG + self.extra_config)
        config.chmod(0o644)
        sway_env = _base_env() | {
            "XDG_RUNTIME_DIR": str(self.runtime), "HOME": str(home), "WLR_BACKENDS": "headless",
            "WLR_LIBINPUT_NO_DEVICES": "1", "WLR_RENDERER": "pixman"}
        with open(self.logs / "sway.log", "ab") as out:
            # sway refuses to run as root and has no flag against it; setsid so a signal meant for
            # the test runner's group does not reach it before we stop it ourselves.
            as_sway = (["setpriv", f"--reuid={SWAY_UID}", f"--regid={SWAY_UID}", "--clear-groups"]
                       if SWAY_UID != os.geteuid() else [])
            self._sway = subprocess.Popen(
                [*as_sway, "sway", "-c", str(config)],
                env=sway_env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True)
        display, ipc = self._wait("sway's wayland and IPC sockets", self._sockets)
        self.env = _base_env() | {
            "XDG_RUNTIME_DIR": str(self.runtime), "WAYLAND_DISPLAY": display, "SWAYSOCK": ipc,
            "XDG_SESSION_TYPE": "wayland", "XDG_CURRENT_DESKTOP": "sway"}
        self._wait("sway answering on IPC", lambda: self.swaymsg("-t", "get_version", check=False).returncode == 0)
        self.startup_s = time.monotonic() - began
        log.info("sway up in %.2f s (%s, %s)", self.startup_s, display, self.workdir)

    def stop(self, timeout: float = 5.0) -> None:
        """Clients first (newest first), then sway (it removes its sockets on SIGTERM)."""
        procs, self._procs = self._procs, []
        for _, proc in reversed(procs):
            if proc.poll() is None:
                proc.terminate()
        for _, proc in reversed(procs):
            stop_process(proc, timeout)
        if self._sway is not None:
            stop_process(self._sway, timeout)
        if self.workdir is not None and not self.keep_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def check(self) -> None:
        if self._sway is None or self._sway.poll() is not None:
            code = None if self._sway is None else self._sway.returncode
            raise DesktopError(f"sway is not running (exit {code}):\n{_tail(self.logs / 'sway.log')}")

    # -- processes -----------------------------------------------------------------------------

    def spawn(self, argv: Sequence[str], *, name: str | None = None,
              env: Mapping[str, str] | None = None, **popen_kwargs: object) -> subprocess.Popen:
        """Start a client with `env` (plus overrides); output to a log file, never a pipe: a
        background wl-copy keeps its caller's pipes open, and a reader of them would hang."""
        name = name or Path(argv[0]).name
        with open(self.logs / f"{name}-{next(self._ids)}.log", "ab") as out:
            popen_kwargs.setdefault("stdout", out)
            popen_kwargs.setdefault("stderr", subprocess.STDOUT)
            popen_kwargs.setdefault("stdin", subprocess.DEVNULL)
            proc = subprocess.Popen(list(argv), env=self.env | dict(env or {}), start_new_session=True,
                                    **popen_kwargs)
        self._procs.append((name, proc))
        return proc

    def forget(self, proc: subprocess.Popen) -> None:
        self._procs = [(n, p) for n, p in self._procs if p is not proc]

    def run(self, *argv: str, check: bool = True, timeout: float = 30.0,
            input: bytes | None = None) -> subprocess.CompletedProcess:
        result = subprocess.run(list(argv), env=self.env, input=input, capture_output=True, timeout=timeout,
                                stdin=None if input is not None else subprocess.DEVNULL)
        if check and result.returncode != 0:
            raise DesktopError(f"{' '.join(argv)} exited {result.returncode}: "
                               f"{result.stderr.decode(errors='replace').strip()}")
        return result

    def swaymsg(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        # one command per call: swaymsg joins its arguments into one command line
        return self.run("swaymsg", *args, check=check)

    def wtype(self, *args: str) -> None:
        self.run("wtype", *args)

    def tap_ctrl(self, times: int = 3, key: str = "Control_L", gap_ms: int = 80) -> None:
        """Taps of Ctrl in one wtype command (process start-up on a loaded box would stretch the
        gaps past a tap window); the release fires our `--release` binding."""
        args = ["-s", "30"]  # without a leading delay wtype's first key is often lost
        for i in range(times):
            args += ["-s", str(gap_ms)] if i else []
            args += ["-P", key, "-p", key]
        self.wtype(*args)

    def chord(self, *keys: str, ctrl: str = "Control_L") -> None:
        """Ctrl+keys as a hardware keyboard sends them: the Ctrl key goes down, then the modifier
        state says Ctrl (wtype's -P alone sets no modifier, and -M alone sends no Ctrl key), the keys,
        and the reverse. The trailing release of F20 is the GTK last-new-key quirk's workaround."""
        args = ["-s", "30", "-P", ctrl, "-M", "ctrl"]
        for key in keys:
            args += ["-k", key]
        self.wtype(*args, "-m", "ctrl", "-p", ctrl, "-p", "F20")

    # -- windows -------------------------------------------------------------------------------

    def tree(self) -> dict:
        return json.loads(self.swaymsg("-t", "get_tree").stdout)

    def focused_app_id(self) -> str | None:
        stack = [self.tree()]
        while stack:
            node = stack.pop()
            if node.get("focused"):
                return node.get("app_id")
            stack.extend(node.get("nodes", ()))
            stack.extend(node.get("floating_nodes", ()))
        return None

    def has_window(self, app_id: str) -> bool:
        return f'"app_id": "{app_id}"' in self.swaymsg("-t", "get_tree").stdout.decode()

    def focus(self, app_id: str) -> None:
        self._wait(f"a window with app_id {app_id}", lambda: self.has_window(app_id))
        self.swaymsg(f'[app_id="{app_id}"] focus')
        self._wait(f"{app_id} focused", lambda: self.focused_app_id() == app_id)

    # -- clipboard -----------------------------------------------------------------------------

    def clipboard_get(self) -> str | None:
        """The clipboard's text, None when nobody offers one (wl-paste then exits 1)."""
        result = self.run("wl-paste", "-n", check=False, timeout=15)
        return result.stdout.decode("utf-8", errors="replace") if result.returncode == 0 else None

    def clipboard_set(self, text: str) -> None:
        """wl-copy serves the clipboard from the foreground (-f) as our child, stopped by PID."""
        proc = self.spawn(["wl-copy", "-f"], name="wl-copy", stdin=subprocess.PIPE)
        proc.stdin.write(text.encode())
        proc.stdin.close()
        self._wait("the clipboard to hold the new text", lambda: self.clipboard_get() == text)

    # -- internals -----------------------------------------------------------------------------

    def _sockets(self) -> tuple[str, str] | None:
        self.check()
        names = sorted(p.name for p in self.runtime.iterdir())
        display = next((n for n in names if n.startswith("wayland-") and not n.endswith(".lock")), None)
        ipc = next((n for n in names if n.startswith("sway-ipc.") and n.endswith(".sock")), None)
        return (display, str(self.runtime / ipc)) if display and ipc else None

    def _wait(self, what: str, ready):
        def ready_or_dead():
            self.check()
            return ready()
        try:
            return wait_until(ready_or_dead, self.timeout, what, interval=0.05)
        except TimeoutError as exc:
            raise DesktopError(f"{exc}\n{_tail(self.logs / 'sway.log')}") from None


class _FileTarget:
    """A window whose received text the test reads from a file the target writes."""

    app_id = ""

    def __init__(self, session: SwaySession, proc: subprocess.Popen, out: Path) -> None:
        self.session = session
        self._proc = proc
        self._out = out

    def __enter__(self):
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def focus(self) -> None:
        self.session.focus(self.app_id)

    def data(self) -> bytes:
        try:
            return self._out.read_bytes()
        except FileNotFoundError:
            return b""

    def text(self) -> str:
        return self.data().decode("utf-8", errors="replace")

    def wait_for_text(self, expected, timeout: float = 15.0) -> str:
        matches = expected if callable(expected) else (lambda text: expected in text)

        def ready() -> bool:
            if self._proc.poll() is not None and not matches(self.text()):
                raise DesktopError(f"{self.app_id} exited {self._proc.returncode}")
            return matches(self.text())
        try:
            wait_until(ready, timeout, f"text matching {expected!r} in {self.app_id}", interval=0.05)
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}; it holds {self.text()!r}") from None
        return self.text()

    def close(self) -> None:
        stop_process(self._proc)
        self.session.forget(self._proc)


class GtkTarget(_FileTarget):
    """A native GTK3 Wayland TextView (gtk_target.py): what an ordinary app receives."""

    def __init__(self, session: SwaySession, app_id: str = "gtktarget") -> None:
        self.app_id = app_id
        n = next(session._ids)
        out = session.workdir / f"{app_id}-{n}.txt"
        self._keys = session.workdir / f"{app_id}-{n}.keys"
        proc = session.spawn([SYSTEM_PYTHON, str(HERE / "gtk_target.py"), "--app-id", app_id, "--out", str(out),
                              "--keys", str(self._keys)],
                             name=app_id, env={"GDK_BACKEND": "wayland", "NO_AT_BRIDGE": "1"})
        super().__init__(session, proc, out)
        session._wait(f"{app_id} to map", lambda: out.exists() and session.has_window(app_id))


    def key_events(self) -> list[str]:
        """Every key event the window got, in order: "press Control_L", "release c"..."""
        try:
            return self._keys.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []


class FootTarget(_FileTarget):
    """foot running `cat` in a raw tty: every byte the terminal sends to its program, unchanged
    (Ctrl+V arrives as 0x16; only Ctrl+Shift+V pastes)."""

    def __init__(self, session: SwaySession, app_id: str = "foot") -> None:
        # "foot" (its own default) and not a name of ours: the daemon picks the terminal's paste
        # chord by the focused app_id, as it would for a person's foot
        self.app_id = app_id
        out = session.workdir / f"{app_id}-{next(session._ids)}.bin"
        proc = session.spawn(["foot", "-a", app_id, "-e", "sh", "-c", f"stty raw -echo; exec cat > '{out}'"],
                             name=app_id)
        super().__init__(session, proc, out)
        session._wait(f"{app_id} to map", lambda: out.exists() and session.has_window(app_id))


def _base_env() -> dict[str, str]:
    env = dict(os.environ)
    for var in ("DISPLAY", "WAYLAND_DISPLAY", "SWAYSOCK", "XAUTHORITY", "HYPRLAND_INSTANCE_SIGNATURE",
                "XDG_CURRENT_DESKTOP", "DESKTOP_SESSION", "XDG_SESSION_TYPE", "I3SOCK"):
        env.pop(var, None)
    return env

