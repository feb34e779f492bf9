"""A private virtual Linux desktop for end-to-end tests of the real daemon.

    Desktop (one temp dir; every process below is a child it started, and stops by PID)
     ├─ Xvfb -displayfd          X server :N (RECORD for pynput's listener, XTEST for xdotool)
     ├─ dbus-daemon --nofork     session bus at DIR/bus, no service activation
     │   ├─ dunst                owns org.freedesktop.Notifications, draws on :N
     │   └─ dbus-monitor         Notify calls -> DIR/logs/notifications.log -> notifications()
     ├─ pulseaudio -n -F         null sink "vsink" + pipe source "vmic" (the default source)
     │   └─ DIR/vmic.fifo  <-  VirtualMic thread: s16le 16 kHz mono, 20 ms blocks at real-time pace
     ├─ trayer                   XEmbed tray host (start_tray=True)
     └─ spawn(...)               anything a test starts: PasteTarget, xclip, the daemon under test

Clients get `Desktop.env`. The microphone writer never stops on its own: a PulseAudio pipe source
whose writer is gone delivers nothing (not silence), and then sounddevice's `stream.stop()` hangs.
`VirtualMic.stop_feed()` produces exactly that state on purpose.

Plain Python (no pytest import at module level); `require()` imports pytest when it is called.
"""
from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import dataclasses
import importlib.util
import itertools
import logging
import os
import re
import select
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

import numpy as np

log = logging.getLogger(__name__)

T = TypeVar("T")

HERE = Path(__file__).resolve().parent
SAMPLE_RATE = 16_000
BLOCK_S = 0.020
BLOCK_BYTES = int(SAMPLE_RATE * BLOCK_S) * 2  # s16le mono
# Behind by more than this (a stalled machine), the mic writer skips ahead instead of bursting.
MAX_LAG_S = 0.5
STACK_TOOLS = ("Xvfb", "xdpyinfo", "dbus-daemon", "dbus-send", "dbus-monitor", "dunst",
               "pulseaudio", "pactl", "xdotool", "xclip", "import")
TITLE_RE = re.compile(r"^[A-Za-z0-9_-]+$")

_BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""
# No <servicedir>: the stock session.conf would let the bus activate a notification daemon itself,
# a grandchild that no PID of ours covers.

_PULSE_SCRIPT = """load-module module-native-protocol-unix auth-anonymous=1 socket={socket}
load-module module-null-sink sink_name=vsink rate={rate} channels=1
load-module module-pipe-source source_name=vmic file={fifo} format=s16le rate={rate} channels=1
set-default-sink vsink
set-default-source vmic
"""

_DUNSTRC = """[global]
    font = DejaVu Sans 10
[urgency_low]
    timeout = 20
[urgency_normal]
    timeout = 20
[urgency_critical]
    timeout = 0
"""


class DesktopError(RuntimeError):
    """A part of the stack did not come up or died; the message carries the tail of its log."""


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def require(tool_names: Iterable[str], modules: Iterable[str] = ()) -> None:
    """Skip the calling test if a binary (or Python module) is missing; fail instead when CI is set.

    A desktop test must never silently skip in CI: there, a missing tool is a broken environment.
    """
    import pytest

    missing = [name for name in tool_names if shutil.which(name) is None]
    missing += [name for name in modules if importlib.util.find_spec(name) is None]
    if not missing:
        return
    message = "desktop test needs: " + ", ".join(missing)
    if in_ci():
        pytest.fail(message + " (CI is set, so this is an error, not a skip)", pytrace=False)
    pytest.skip(message)


def wait_until(predicate: Callable[[], T], timeout: float, what: str, interval: float = 0.02) -> T:
    """Poll `predicate` until it returns something truthy; TimeoutError naming `what` otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:.1f} s waiting for {what}")
        time.sleep(interval)


def stop_process(proc: subprocess.Popen, timeout: float = 5.0) -> None:
    """SIGTERM, then SIGKILL after `timeout`; always reaps (PID 1 here reaps nobody)."""
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        log.warning("pid %d did not exit on SIGTERM within %.1f s; killing it", proc.pid, timeout)
        proc.kill()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            log.error("pid %d survived SIGKILL for %.1f s", proc.pid, timeout)


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def private_env(base: Mapping[str, str], root: Path, **settings: str) -> dict[str, str]:
    """``base`` (a desktop's environment) with HOME, the XDG dirs and the daemon's runtime dir
    made under ``root``, so a script's daemon touches nothing of the user's, offline, without
    sounds; ``settings`` add or override variables (``CTRLSPEAK_TRAY="false"``)."""
    env = dict(base)
    for var in ("HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
        env[var] = str(root / var.lower())
        Path(env[var]).mkdir(parents=True, exist_ok=True)
    env.update({"CTRLSPEAK_RUNTIME_DIR": str(root / "run"), "HF_HUB_OFFLINE": "1", "CTRLSPEAK_SOUNDS": "false",
                **settings})
    return env


def speak(text: str, voice: str = "en-us", rate: int = 160, pitch: int = 50) -> np.ndarray:
    """espeak-ng speech as float32 mono at 16 kHz (espeak writes 22.05 kHz)."""
    import soundfile
    import soxr

    with tempfile.TemporaryDirectory(prefix="ctrlspeak-speak-") as tmp:
        wav = Path(tmp) / "speech.wav"
        # --stdin keeps a text starting with "-" from being read as an option.
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(rate), "-p", str(pitch), "-w", str(wav),
                        "--stdin"], input=text.encode(), stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, check=True, timeout=60)
        data, rate_in = soundfile.read(wav, dtype="float32", always_2d=True)
    mono = data.mean(axis=1)
    return np.ascontiguousarray(soxr.resample(mono, rate_in, SAMPLE_RATE), dtype=np.float32)


@dataclasses.dataclass(frozen=True)
class Notification:
    """One org.freedesktop.Notifications.Notify call seen on the bus."""

    app_name: str
    summary: str
    body: str
    replaces_id: int = 0
    app_icon: str = ""
    actions: tuple[str, ...] = ()
    hints: Mapping[str, str] = dataclasses.field(default_factory=dict)  # key -> "type value" as printed
    expire_timeout: int = -1
    time: float = 0.0  # the bus timestamp (Unix time)


_HEADER = re.compile(r"^(?:method call|method return|signal|error) time=(?P<time>[\d.]+) (?P<rest>.*)$",
                     re.M)
# dbus-monitor prints strings raw (no escaping), so a string ends at the `"` that is followed by the
# line the next argument must start with; multi-line bodies and quotes inside texts parse fine.
_NOTIFY_ARGS = re.compile(
    r'   string "(?P<app_name>.*?)"\n'
    r"   uint32 (?P<replaces_id>\d+)\n"
    r'   string "(?P<app_icon>.*?)"\n'
    r'   string "(?P<summary>.*?)"\n'
    r'   string "(?P<body>.*?)"\n'
    r"   array \[\n(?P<actions>.*?)   \]\n"
    r"   array \[\n(?P<hints>.*?)   \]\n"
    r"   int32 (?P<expire_timeout>-?\d+)\n",
    re.S)
_ACTION = re.compile(r'^      string "(.*)"$', re.M)
_HINT = re.compile(r'^      dict entry\(\n {9}string "(?P<key>.*?)"\n {9}variant\s+(?P<value>.*?)\n {6}\)$',
                   re.M | re.S)


def parse_notifications(log_text: str) -> list[Notification]:
    """The Notify calls in dbus-monitor output, in order. A block still being written is skipped."""
    headers = list(_HEADER.finditer(log_text))
    found = []
    for header, following in zip(headers, headers[1:] + [None]):
        rest = header["rest"]
        if "interface=org.freedesktop.Notifications;" not in rest or not rest.endswith("member=Notify"):
            continue
        body = log_text[header.end() + 1:following.start() if following else len(log_text)]
        args = _NOTIFY_ARGS.fullmatch(body)
        if args is None:
            continue
        found.append(Notification(
            app_name=args["app_name"], summary=args["summary"], body=args["body"],
            replaces_id=int(args["replaces_id"]), app_icon=args["app_icon"],
            actions=tuple(_ACTION.findall(args["actions"])),
            hints={m["key"]: m["value"] for m in _HINT.finditer(args["hints"])},
            expire_timeout=int(args["expire_timeout"]), time=float(header["time"])))
    return found


def _x11_selection_owner(display: str, selection: str) -> int:
    """The window owning an X selection (0 if none), via libX11: no Python Xlib binding needed."""
    x11 = ctypes.CDLL(ctypes.util.find_library("X11") or "libX11.so.6")
    x11.XOpenDisplay.restype = ctypes.c_void_p
    x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
    x11.XInternAtom.restype = ctypes.c_ulong
    x11.XInternAtom.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
    x11.XGetSelectionOwner.restype = ctypes.c_ulong
    x11.XGetSelectionOwner.argtypes = [ctypes.c_void_p, ctypes.c_ulong]
    x11.XCloseDisplay.argtypes = [ctypes.c_void_p]
    dpy = x11.XOpenDisplay(display.encode())
    if not dpy:
        return 0
    try:
        return int(x11.XGetSelectionOwner(dpy, x11.XInternAtom(dpy, selection.encode(), 0)))
    finally:
        x11.XCloseDisplay(dpy)


class VirtualMic:
    """Feeds PulseAudio's pipe source: silence by default, queued speech when asked, in real time.

    The writer thread wakes on time.monotonic() deadlines 20 ms apart (no sleep drift) and writes one
    block per deadline, catching up after a short stall and skipping ahead after a long one.
    """

    def __init__(self, fifo: Path) -> None:
        self.fifo = fifo
        self.error: OSError | None = None
        self._fd: int | None = None
        self._cond = threading.Condition()
        self._pending = bytearray()
        self._queued = 0    # bytes ever queued by play()
        self._played = 0    # of those, bytes written to the FIFO
        self._feeding = True
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        # PulseAudio holds the FIFO open read-write, so a non-blocking open for writing succeeds.
        self._fd = os.open(self.fifo, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        self._thread = threading.Thread(target=self._run, name="virtual-mic", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._closing.set()
        if self._thread is not None:
            self._thread.join(5)
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def feeding(self) -> bool:
        return self._feeding

    def play(self, samples: np.ndarray, lead_s: float = 0.3, tail_s: float = 0.5) -> float:
        """Queue float32 16 kHz mono audio (with silence around it); returns its length in seconds."""
        audio = np.asarray(samples, dtype=np.float32)
        if audio.ndim != 1:
            raise ValueError(f"expected mono samples (1-D), got shape {audio.shape}")
        pcm = (np.clip(audio, -1.0, 1.0) * 32767.0).round().astype("<i2").tobytes()
        data = bytes(2 * round(lead_s * SAMPLE_RATE)) + pcm + bytes(2 * round(tail_s * SAMPLE_RATE))
        with self._cond:
            self._pending += data
            self._queued += len(data)
        return len(data) / 2 / SAMPLE_RATE

    def wait_played(self, timeout: float | None = None) -> bool:
        """True once everything queued so far has been written into the FIFO."""
        with self._cond:
            target = self._queued
            return self._cond.wait_for(lambda: self._played >= target or not self.alive, timeout) \
                and self._played >= target

    def clear(self) -> None:
        """Drop speech not yet written."""
        with self._cond:
            self._played += len(self._pending)
            self._pending.clear()
            self._cond.notify_all()

    def drain(self) -> None:
        """Drop all speech not yet heard: queued here and already in the FIFO. A recording cut
        short leaves the rest of its sentence there, and the next recording would hear it first."""
        self.clear()
        try:
            fd = os.open(self.fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:  # no FIFO (PulseAudio was stopped): nothing is buffered either
            return
        try:
            while True:
                try:
                    if not os.read(fd, 1 << 16):
                        break
                except BlockingIOError:
                    break
        finally:
            os.close(fd)

    def stop_feed(self) -> None:
        """Write nothing at all from now on: the microphone looks dead, not silent."""
        self._feeding = False

    def resume_feed(self) -> None:
        self._feeding = True

    def _run(self) -> None:
        deadline = time.monotonic()
        while not self._closing.is_set():
            delay = deadline - time.monotonic()
            if delay > 0:
                self._closing.wait(delay)
                continue
            if self._feeding:
                with self._cond:
                    chunk = bytes(self._pending[:BLOCK_BYTES])
                try:
                    os.write(self._fd, chunk.ljust(BLOCK_BYTES, b"\0"))
                except BlockingIOError:
                    pass  # pipe full: PulseAudio is not reading; offer the same audio next tick
                except OSError as exc:
                    log.error("virtual microphone: writing %s failed: %s", self.fifo, exc)
                    self.error = exc
                    with self._cond:
                        self._cond.notify_all()
                    return
                else:
                    with self._cond:
                        del self._pending[:len(chunk)]
                        self._played += len(chunk)
                        self._cond.notify_all()
            deadline += BLOCK_S
            if time.monotonic() - deadline > MAX_LAG_S:
                deadline = time.monotonic()


class Desktop:
    """Xvfb + private session bus + dunst + notification capture + PulseAudio with a virtual mic.

    Use as a context manager. `env` is what every client needs (DISPLAY, DBUS_SESSION_BUS_ADDRESS,
    XDG_RUNTIME_DIR, PULSE_SERVER, ...; HOME and the rest inherited). On exit it stops exactly the
    processes it started (including those from `spawn`) and removes `workdir`.
    """

    def __init__(self, *, start_tray: bool = False, screen: str = "1280x800x24",
                 timeout: float = 30.0, keep_workdir: bool = False) -> None:
        self.start_tray = start_tray
        self.screen = screen
        self.timeout = timeout
        self.keep_workdir = keep_workdir
        self.display = ""
        self.env: dict[str, str] = {}
        self.workdir: Path | None = None
        self.logs: Path | None = None
        self.mic: VirtualMic | None = None
        self.startup_s = 0.0
        self.started: list[tuple[str, int]] = []  # (name, pid) of everything ever started
        self._procs: list[tuple[str, subprocess.Popen]] = []
        self._notify_offset = 0
        self._ids = itertools.count(1)

    def __enter__(self) -> Desktop:
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
        self.workdir = Path(tempfile.mkdtemp(prefix="ctrlspeak-desktop-"))
        if len(str(self.workdir / "pulse.sock")) > 100:  # AF_UNIX paths are capped at 108 bytes
            shutil.rmtree(self.workdir)
            self.workdir = Path(tempfile.mkdtemp(prefix="ctrlspeak-desktop-", dir="/tmp"))
        self.logs = self.workdir / "logs"
        self.logs.mkdir()
        runtime = self.workdir / "runtime"
        runtime.mkdir(mode=0o700)
        (self.workdir / "home").mkdir(mode=0o700)
        bus_address = f"unix:path={self.workdir / 'bus'}"
        fifo = self.workdir / "vmic.fifo"  # created by module-pipe-source, which refuses an existing one

        # X, the bus and audio need nothing from each other: start all three, then wait.
        display_reader = self._start_xvfb()
        bus = self._start_bus()
        (self.workdir / "custom.pa").write_text(_PULSE_SCRIPT.format(
            socket=self.workdir / "pulse.sock", rate=SAMPLE_RATE, fifo=fifo))
        daemon_env = self._base_env() | {
            "HOME": str(self.workdir / "home"), "XDG_CONFIG_HOME": str(self.workdir / "home" / ".config"),
            "XDG_RUNTIME_DIR": str(runtime), "DBUS_SESSION_BUS_ADDRESS": bus_address}
        self._popen("pulseaudio", ["pulseaudio", "-n", "--daemonize=no", "--exit-idle-time=-1",
                                   "--realtime=no", "--high-priority=no", "--use-pid-file=no",
                                   "--log-target=stderr", "-F", str(self.workdir / "custom.pa")],
                    env=daemon_env)

        self.display = f":{self._read_display(display_reader)}"
        address = self._read_bus_address(bus)
        client_conf = self.workdir / "pulse-client.conf"
        client_conf.write_text("autospawn = no\n")
        self.env = self._base_env() | {
            "DISPLAY": self.display, "DBUS_SESSION_BUS_ADDRESS": address, "XDG_RUNTIME_DIR": str(runtime),
            "PULSE_SERVER": f"unix:{self.workdir / 'pulse.sock'}", "PULSE_CLIENTCONFIG": str(client_conf),
            "XDG_SESSION_TYPE": "x11"}

        (self.workdir / "dunstrc").write_text(_DUNSTRC)
        self._popen("dunst", ["dunst", "-config", str(self.workdir / "dunstrc")])
        self._notify_log = self.logs / "notifications.log"
        self._popen("dbus-monitor", ["dbus-monitor", "interface='org.freedesktop.Notifications'"],
                    stdout=self._notify_log)
        if self.start_tray:
            self._popen("trayer", ["trayer", "--edge", "top", "--align", "right", "--widthtype", "request",
                                   "--height", "24", "--transparent", "false", "--SetDockType", "true"])

        self._wait("X server answering", self._x_ready)
        self._wait("PulseAudio with vmic as default source", self._pulse_ready)
        self.mic = VirtualMic(fifo)
        self.mic.start()
        self._wait("dunst on org.freedesktop.Notifications", self._dunst_ready)
        self._wait("dbus-monitor connected", lambda: self._notify_log.stat().st_size > 0)
        if self.start_tray:
            self._wait("tray host (_NET_SYSTEM_TRAY_S0 owner)", self.tray_ready)
        self.startup_s = time.monotonic() - began
        log.info("desktop %s up in %.2f s (%s)", self.display, self.startup_s, self.workdir)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop everything this Desktop started, newest first, then remove its directory."""
        if self.mic is not None:
            self.mic.close()
        procs, self._procs = self._procs, []
        for _, proc in reversed(procs):
            if proc.poll() is None:
                proc.terminate()
        for _, proc in reversed(procs):
            stop_process(proc, timeout)
        for proc in (p for _, p in procs):
            for stream in (proc.stdin, proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()
        if self.workdir is not None and not self.keep_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def check(self) -> None:
        """Raise DesktopError if a part of the stack has died (better than a baffling test failure)."""
        dead = [f"{name} (pid {proc.pid}, exit {proc.returncode})\n{_tail(self.logs / (name + '.log'))}"
                for name, proc in self._procs if name in self._core_names and proc.poll() is not None]
        if self.mic is not None and not self.mic.alive:
            dead.append(f"virtual microphone writer ({self.mic.error})")
        if dead:
            raise DesktopError("desktop stack component died: " + "\n".join(dead))

    def reset(self) -> None:
        """Per-test reset: notifications() starts afresh, the clipboard is empty, the mic is silent."""
        self.check()
        self._notify_offset = self._notify_log.stat().st_size
        if self.mic is not None:
            self.mic.drain()  # also what an earlier test's cut-short recording left in the FIFO
            self.mic.resume_feed()
        self.clipboard_set("")

    # -- processes -----------------------------------------------------------------------------

    def spawn(self, argv: Sequence[str], *, name: str | None = None,
              env: Mapping[str, str] | None = None, **popen_kwargs: object) -> subprocess.Popen:
        """Start a process with `env` (plus `env` overrides); it is stopped when the Desktop stops.

        stdout/stderr default to a log file in workdir/logs: a child that inherits a pipe the caller
        reads can make that caller hang (xclip stays alive to own the clipboard).
        """
        name = name or Path(argv[0]).name
        logfile = self.logs / f"{name}-{next(self._ids)}.log"
        with open(logfile, "ab") as out:
            popen_kwargs.setdefault("stdout", out)
            popen_kwargs.setdefault("stderr", subprocess.STDOUT)
            popen_kwargs.setdefault("stdin", subprocess.DEVNULL)
            proc = subprocess.Popen(list(argv), env=self.env | dict(env or {}), start_new_session=True,
                                    **popen_kwargs)
        self._track(name, proc)
        return proc

    def forget(self, proc: subprocess.Popen) -> None:
        """Stop tracking a process the caller has stopped and reaped itself."""
        self._procs = [(n, p) for n, p in self._procs if p is not proc]

    def xdotool(self, *args: str, check: bool = True, timeout: float = 30.0) -> subprocess.CompletedProcess:
        result = subprocess.run(["xdotool", *args], env=self.env, stdin=subprocess.DEVNULL,
                                capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise DesktopError(f"xdotool {' '.join(args)} exited {result.returncode}: {result.stderr.strip()}")
        return result

    def screenshot(self, path: str | os.PathLike[str]) -> Path:
        path = Path(path)
        subprocess.run(["import", "-display", self.display, "-window", "root", str(path)], env=self.env,
                       stdin=subprocess.DEVNULL, capture_output=True, check=True, timeout=30)
        return path

    # -- notifications and clipboard -----------------------------------------------------------

    def notifications(self, since_reset: bool = True) -> list[Notification]:
        with open(self._notify_log, "rb") as f:
            f.seek(self._notify_offset if since_reset else 0)
            return parse_notifications(f.read().decode("utf-8", errors="replace"))

    def wait_for_notification(self, predicate: Callable[[Notification], bool] | None = None,
                              timeout: float = 15.0) -> Notification:
        def match() -> Notification | None:
            return next((n for n in self.notifications() if predicate is None or predicate(n)), None)
        try:
            return wait_until(match, timeout, "a matching notification", interval=0.05)
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}; seen: {self.notifications()!r}") from None

    def clipboard_get(self, selection: str = "clipboard") -> str:
        """The selection's text; "" when nobody owns it."""
        result = subprocess.run(["xclip", "-o", "-selection", selection], env=self.env,
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, timeout=15)
        return result.stdout.decode("utf-8", errors="replace") if result.returncode == 0 else ""

    def clipboard_set(self, text: str, selection: str = "clipboard") -> None:
        """Own the selection with `text` (an xclip child in the foreground) and wait until it reads back."""
        self._reap()
        proc = self.spawn(["xclip", "-quiet", "-selection", selection, "-i"], name="xclip",
                          stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        proc.stdin.write(text.encode())
        proc.stdin.close()
        wait_until(lambda: self.clipboard_get(selection) == text, self.timeout,
                   f"the {selection} selection to hold the new text", interval=0.05)

    def tray_ready(self) -> bool:
        return _x11_selection_owner(self.display, "_NET_SYSTEM_TRAY_S0") != 0

    # -- internals -----------------------------------------------------------------------------

    _core_names = ("Xvfb", "dbus-daemon", "dunst", "dbus-monitor", "pulseaudio", "trayer")

    @staticmethod
    def _base_env() -> dict[str, str]:
        env = dict(os.environ)
        for var in ("WAYLAND_DISPLAY", "DISPLAY", "DBUS_SESSION_BUS_ADDRESS", "PULSE_SERVER",
                    "PULSE_COOKIE", "XAUTHORITY"):
            env.pop(var, None)
        return env

    def _track(self, name: str, proc: subprocess.Popen) -> None:
        self._procs.append((name, proc))
        self.started.append((name, proc.pid))

    def _reap(self) -> None:
        """Forget finished children (an xclip exits when another client takes the selection)."""
        for name, proc in list(self._procs):
            if name not in self._core_names and proc.poll() is not None:
                self.forget(proc)

    def _popen(self, name: str, argv: list[str], *, env: Mapping[str, str] | None = None,
               stdout: Path | int | None = None, pass_fds: Sequence[int] = ()) -> subprocess.Popen:
        """Start a stack process; stderr (and stdout unless given: a file, or PIPE) go to logs/NAME.log."""
        with contextlib.ExitStack() as files:
            err = files.enter_context(open(self.logs / f"{name}.log", "ab"))
            out = (files.enter_context(open(stdout, "ab")) if isinstance(stdout, Path)
                   else err if stdout is None else stdout)
            proc = subprocess.Popen(argv, env=dict(env) if env is not None else self.env,
                                    stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                    start_new_session=True, pass_fds=pass_fds)
        self._track(name, proc)
        return proc

    def _start_xvfb(self) -> int:
        # -displayfd: Xvfb picks a free display itself (honouring other servers' locks, race-free
        # against parallel runs) and writes its number once it accepts connections.
        reader, writer = os.pipe()
        try:
            self._popen("Xvfb", ["Xvfb", "-displayfd", str(writer), "-screen", "0", self.screen,
                                 "-nolisten", "tcp", "-noreset", "+extension", "RECORD"],
                        env=self._base_env(), pass_fds=(writer,))
        finally:
            os.close(writer)
        return reader

    def _read_display(self, reader: int) -> str:
        try:
            data = b""
            deadline = time.monotonic() + self.timeout
            while not data.endswith(b"\n"):
                ready, _, _ = select.select([reader], [], [], max(0.0, deadline - time.monotonic()))
                chunk = os.read(reader, 64) if ready else b""
                if not chunk:
                    raise DesktopError(f"Xvfb did not report a display:\n{_tail(self.logs / 'Xvfb.log')}")
                data += chunk
            return data.decode().strip()
        finally:
            os.close(reader)

    def _start_bus(self) -> subprocess.Popen:
        config = self.workdir / "bus.conf"
        config.write_text(_BUS_CONFIG.format(socket=self.workdir / "bus"))
        return self._popen("dbus-daemon", ["dbus-daemon", "--nofork", f"--config-file={config}",
                                           "--print-address=1"],
                           env=self._base_env(), stdout=subprocess.PIPE)

    def _read_bus_address(self, bus: subprocess.Popen) -> str:
        ready, _, _ = select.select([bus.stdout], [], [], self.timeout)
        line = bus.stdout.readline().decode().strip() if ready else ""
        bus.stdout.close()
        if not line:
            raise DesktopError(f"dbus-daemon did not print its address:\n{_tail(self.logs / 'dbus-daemon.log')}")
        return line

    def _wait(self, what: str, ready: Callable[[], object]) -> None:
        def ready_or_dead() -> object:
            self.check()
            return ready()
        try:
            wait_until(ready_or_dead, self.timeout, what)
        except TimeoutError as exc:
            logs = "\n".join(f"--- {p.name}\n{_tail(p)}" for p in sorted(self.logs.glob("*.log")))
            raise DesktopError(f"{exc}\n{logs}") from None

    def _x_ready(self) -> bool:
        result = subprocess.run(["xdpyinfo", "-display", self.display], env=self.env,
                                stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=15)
        if result.returncode != 0:
            return False
        missing = [ext for ext in ("RECORD", "XTEST") if ext not in result.stdout]
        if missing:
            raise DesktopError(f"X server {self.display} lacks extensions {missing} (pynput/xdotool need them)")
        return True

    def _pulse_ready(self) -> bool:
        result = subprocess.run(["pactl", "info"], env=self.env, stdin=subprocess.DEVNULL,
                                capture_output=True, text=True, timeout=15)
        return result.returncode == 0 and "Default Source: vmic" in result.stdout

    def _dunst_ready(self) -> bool:
        result = subprocess.run(["dbus-send", "--session", "--print-reply", "--dest=org.freedesktop.DBus",
                                 "/org/freedesktop/DBus", "org.freedesktop.DBus.NameHasOwner",
                                 "string:org.freedesktop.Notifications"], env=self.env,
                                stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=15)
        return result.returncode == 0 and "boolean true" in result.stdout


class PasteTarget:
    """A Tk text window (paste_target.py) whose contents the test can read: where pastes land."""

    def __init__(self, desktop: Desktop, title: str = "PasteTarget", timeout: float = 30.0) -> None:
        if not TITLE_RE.match(title):
            raise ValueError(f"title must match {TITLE_RE.pattern} (it is used as an xdotool regex)")
        self.desktop = desktop
        self.title = title
        self.timeout = timeout
        self.window: str | None = None
        folder = desktop.workdir / f"paste-target-{next(desktop._ids)}"
        folder.mkdir()
        self._out = folder / "text.txt"
        self._command = folder / "command"
        self._proc = desktop.spawn([sys.executable, str(HERE / "paste_target.py"), "--title", title,
                                    "--out", str(self._out), "--command", str(self._command)],
                                   name="paste-target")
        self._wait("the paste target to start", self._out.exists)

    def __enter__(self) -> PasteTarget:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def pid(self) -> int:
        return self._proc.pid

    def focus(self) -> str:
        """Give the window the X input focus (no window manager: windowfocus, not windowactivate)."""
        if self.window is None:
            found = self.desktop.xdotool("search", "--sync", "--onlyvisible", "--name", f"^{self.title}$",
                                         timeout=self.timeout)
            self.window = found.stdout.split()[0]
        self.desktop.xdotool("windowfocus", "--sync", self.window, timeout=self.timeout)
        return self.window

    def text(self) -> str:
        try:
            return self._out.read_text(encoding="utf-8")
        except FileNotFoundError:
            return ""

    def wait_for_text(self, expected: str | Callable[[str], bool], timeout: float = 15.0) -> str:
        """Wait until the text contains `expected` (or satisfies it, if callable); returns the text."""
        matches = expected if callable(expected) else (lambda text: expected in text)
        try:
            self._wait(f"text matching {expected!r}", lambda: matches(self.text()), timeout)
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}; the window holds {self.text()!r}") from None
        return self.text()

    def clear(self) -> None:
        self._send("clear")

    def close(self) -> None:
        if self._proc.poll() is None:
            with contextlib.suppress(TimeoutError, DesktopError):
                self._send("quit", timeout=5.0)
        stop_process(self._proc)
        self.desktop.forget(self._proc)

    def _send(self, command: str, timeout: float | None = None) -> None:
        tmp = self._command.with_name("command.tmp")
        tmp.write_text(command, encoding="utf-8")
        os.replace(tmp, self._command)
        self._wait(f"the paste target to run {command!r}", lambda: not self._command.exists(), timeout)

    def _wait(self, what: str, ready: Callable[[], object], timeout: float | None = None) -> None:
        def ready_or_dead() -> object:
            if self._proc.poll() is not None and not ready():
                raise DesktopError(f"paste target exited {self._proc.returncode}")
            return ready()
        wait_until(ready_or_dead, timeout or self.timeout, what, interval=0.05)
