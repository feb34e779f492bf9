"""GlobalHotkey against a real X server (a private Xvfb) and real keys from xdotool.

Skips where Xvfb/xdotool are missing, except under CI (CI installs them: there a missing
tool is a failure, so these tests cannot silently stop running).
"""
from __future__ import annotations

import itertools
import os
import random
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ctrlspeak import errors
from ctrlspeak.desktop.hotkey import HotkeyConfig, HotkeyEvent, TapDetector
from ctrlspeak.desktop.key_access import hotkey_available
from ctrlspeak.desktop.keyboard import GlobalHotkey
from ctrlspeak.desktop.keys import key_name

pytestmark = pytest.mark.skipif(sys.platform in ("darwin", "win32"), reason="X11 tests")

ARMED, TRIGGER, DISARMED = HotkeyEvent.ARMED, HotkeyEvent.TRIGGER, HotkeyEvent.DISARMED
X_TOOLS = ("Xvfb", "xdpyinfo", "xdotool")
TRIPLE = ("key", "--delay", "80", "ctrl", "ctrl", "ctrl")
RIGHT_CTRL_KEYCODE = "105"  # RCTL in the evdev keycodes Xvfb uses; `xdotool key Control_R` also sends Control_L


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def require_tools(*names: str) -> None:
    """Skip when a tool is missing, but fail under CI, which is supposed to install it."""
    missing = [name for name in names if shutil.which(name) is None]
    if not missing:
        return
    message = f"missing {', '.join(missing)} (Debian: apt-get install xvfb x11-utils xdotool)"
    if in_ci():
        pytest.fail(f"CI is set but {message}", pytrace=False)
    pytest.skip(message)


def display_in_use(number: int) -> bool:
    """Any trace of an X server on :number (lock file, socket file, abstract socket)."""
    if Path(f"/tmp/.X{number}-lock").exists() or Path(f"/tmp/.X11-unix/X{number}").exists():
        return True
    try:
        sockets = Path("/proc/net/unix").read_text()
    except OSError:
        return False
    return any(line.endswith(f" @/tmp/.X11-unix/X{number}") for line in sockets.splitlines())


class Xvfb:
    """One private X server on a free display number; stopped by its own PID only.

    An explicit number rather than ``-displayfd``: a server started that way writes no
    /tmp/.X<N>-lock, so other scripts on a shared machine that pick numbers by lock file
    would not see it. The lock file also names the owner, so we know :N is ours.
    """

    def __init__(self, log_path: Path, *extra_args: str) -> None:
        self.log_path = log_path
        self.extra_args = extra_args
        self.proc: subprocess.Popen[bytes] | None = None
        self.display = ""

    def __enter__(self) -> Xvfb:
        # high numbers, random start: away from real desktops and from -displayfd servers,
        # which take the lowest free numbers
        first = random.randrange(100, 900)
        for number in itertools.chain(range(first, 1000), range(100, first)):
            if display_in_use(number):
                continue
            if self._try(number):
                return self
        pytest.fail("no free X display number in 100..999", pytrace=False)

    def _try(self, number: int) -> bool:
        with open(self.log_path, "ab") as log_file:
            self.proc = subprocess.Popen(
                ["Xvfb", f":{number}", "-screen", "0", "1280x800x24", "-nolisten", "tcp",
                 # without -noreset the server resets when its last client leaves (between
                 # two tests) and refuses the connections that arrive meanwhile
                 "-noreset", *self.extra_args],
                stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file,
            )
        self.display = f":{number}"
        deadline = time.monotonic() + 15.0
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False  # lost a race for this number ("already active"): try another
            answered = subprocess.run(["xdpyinfo", "-display", self.display], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL, timeout=10).returncode == 0
            # the lock file names the server that owns :number; it must be ours
            if answered and self._lock_pid(number) == self.proc.pid and self.proc.poll() is None:
                return True
            time.sleep(0.1)
        self.__exit__()
        pytest.fail(f"Xvfb on {self.display} never answered: {self._log_tail()}", pytrace=False)

    @staticmethod
    def _lock_pid(number: int) -> int | None:
        try:
            return int(Path(f"/tmp/.X{number}-lock").read_text().strip())
        except (OSError, ValueError):
            return None

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-800:]
        except OSError:
            return "(no log)"

    def __exit__(self, *exc: object) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)


@pytest.fixture(scope="module")
def xvfb_display(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    require_tools(*X_TOOLS)
    with Xvfb(tmp_path_factory.mktemp("xvfb") / "xvfb.log") as server:
        yield server.display


@pytest.fixture
def x_env(xvfb_display: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("DISPLAY", xvfb_display)
    for var in ("WAYLAND_DISPLAY", "XDG_SESSION_TYPE", "PYNPUT_BACKEND"):
        monkeypatch.delenv(var, raising=False)
    return xvfb_display


def xdo(*args: str) -> None:
    subprocess.run(["xdotool", *args], check=True, timeout=10)


class Recorder:
    """The on_event callback: remembers events, their times and the calling thread."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.events: list[HotkeyEvent] = []
        self.times: list[float] = []
        self.threads: set[str] = set()
        self.also: Callable[[HotkeyEvent], None] | None = None

    def __call__(self, event: HotkeyEvent) -> None:
        with self.cond:
            self.events.append(event)
            self.times.append(time.monotonic())
            self.threads.add(threading.current_thread().name)
            self.cond.notify_all()
        if self.also is not None:
            self.also(event)

    def wait_for(self, event: HotkeyEvent, timeout: float = 5.0, count: int = 1) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: self.events.count(event) >= count, timeout)

    def time_of(self, event: HotkeyEvent) -> float:
        with self.cond:
            return self.times[self.events.index(event)]

    def clear(self) -> None:
        with self.cond:
            self.events.clear()
            self.times.clear()


@pytest.fixture
def make_hotkey(x_env: str) -> Iterator[Callable[..., tuple[GlobalHotkey, Recorder]]]:
    started: list[GlobalHotkey] = []

    def make(**config: object) -> tuple[GlobalHotkey, Recorder]:
        recorder = Recorder()
        hotkey = GlobalHotkey(TapDetector(HotkeyConfig(**config)), recorder)
        hotkey.start()
        started.append(hotkey)
        return hotkey, recorder

    yield make
    for hotkey in started:
        hotkey.stop()


def assert_live(recorder: Recorder) -> None:
    """A real triple tap still triggers: a quiet listener is not mistaken for a working filter."""
    recorder.clear()
    xdo(*TRIPLE)
    assert recorder.wait_for(TRIGGER, 5.0), f"no TRIGGER after a real triple tap: {recorder.events}"


# -- real keys ----------------------------------------------------------------------


@pytest.mark.desktop
def test_triple_ctrl_triggers(make_hotkey):
    _, rec = make_hotkey()
    xdo(*TRIPLE)
    assert rec.wait_for(TRIGGER, 5.0), rec.events
    time.sleep(0.7)  # longer than the window: nothing may follow a TRIGGER
    assert rec.events == [ARMED, TRIGGER]
    assert rec.threads == {"ctrlspeak-hotkey"}


@pytest.mark.desktop
def test_one_tap_arms_and_the_timer_disarms(make_hotkey):
    _, rec = make_hotkey()
    xdo("key", "ctrl")
    assert rec.wait_for(DISARMED, 3.0), rec.events
    assert rec.events == [ARMED, DISARMED]
    waited = rec.time_of(DISARMED) - rec.time_of(ARMED)
    assert 0.4 <= waited <= 1.5, waited  # window_s is 0.5 from the release


@pytest.mark.desktop
def test_ctrl_c_does_not_trigger(make_hotkey):
    _, rec = make_hotkey()
    xdo("key", "--delay", "80", "ctrl+c", "ctrl+c", "ctrl+c")
    time.sleep(1.0)
    assert TRIGGER not in rec.events and ARMED not in rec.events, rec.events
    assert_live(rec)


@pytest.mark.desktop
def test_typing_between_taps_resets(make_hotkey):
    _, rec = make_hotkey()
    xdo("key", "--delay", "80", "ctrl", "ctrl", "a", "ctrl")
    time.sleep(1.0)
    assert TRIGGER not in rec.events, rec.events
    assert rec.events == [ARMED, DISARMED, ARMED, DISARMED]


@pytest.mark.desktop
def test_own_xdotool_keys_are_ignored_while_synthesizing(make_hotkey):
    hotkey, rec = make_hotkey()
    with hotkey.synthesizing():
        subprocess.run(["xdotool", *TRIPLE], check=True, timeout=10)
    time.sleep(0.8)
    assert rec.events == [], rec.events
    assert not hotkey.modifiers_held()
    assert_live(rec)


@pytest.mark.desktop
def test_own_pynput_controller_keys_are_ignored_while_synthesizing(make_hotkey):
    # the daemon pastes with pynput's Controller, which also notifies the listener directly
    from pynput.keyboard import Controller, Key

    hotkey, rec = make_hotkey()
    controller = Controller()
    with hotkey.synthesizing():
        for _ in range(3):
            controller.press(Key.ctrl)
            controller.release(Key.ctrl)
            time.sleep(0.05)
    time.sleep(0.8)
    assert rec.events == [], rec.events
    assert_live(rec)


@pytest.mark.desktop
def test_synthesizing_abandons_an_armed_sequence(make_hotkey):
    hotkey, rec = make_hotkey()
    xdo("key", "ctrl")
    assert rec.wait_for(ARMED, 3.0)
    with hotkey.synthesizing():
        pass
    assert rec.wait_for(DISARMED, 1.0), rec.events
    time.sleep(0.7)
    assert rec.events == [ARMED, DISARMED]


@pytest.mark.desktop
def test_keys_just_after_synthesizing_are_ignored(x_env):
    # The grace period is measured on the injected clock, so the test does not depend on
    # how fast this machine delivers keys: "now" is 0.1 s, then 0.3 s, after the block.
    now = [100.0]
    rec = Recorder()
    hotkey = GlobalHotkey(TapDetector(HotkeyConfig()), rec, clock=lambda: now[0])
    hotkey.start()
    try:
        with hotkey.synthesizing():
            pass
        now[0] = 100.1
        xdo(*TRIPLE)
        time.sleep(0.5)
        assert rec.events == []
        now[0] = 100.3
        xdo(*TRIPLE)  # every tap at the same instant of the frozen clock: still taps
        assert rec.wait_for(TRIGGER, 5.0), rec.events
    finally:
        hotkey.stop()


@pytest.mark.desktop
def test_modifiers_held_and_wait_released(make_hotkey):
    hotkey, _ = make_hotkey()
    assert not hotkey.modifiers_held()
    assert hotkey.wait_modifiers_released(0.1) is True
    xdo("keydown", "ctrl")
    try:
        deadline = time.monotonic() + 3.0
        while not hotkey.modifiers_held() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert hotkey.modifiers_held()
        t0 = time.monotonic()
        assert hotkey.wait_modifiers_released(0.3) is False
        assert time.monotonic() - t0 >= 0.25
        threading.Timer(0.3, xdo, args=("keyup", "ctrl")).start()
        t0 = time.monotonic()
        assert hotkey.wait_modifiers_released(5.0) is True
        assert 0.25 <= time.monotonic() - t0 < 3.0
        assert not hotkey.modifiers_held()
    finally:
        xdo("keyup", "ctrl")


@pytest.mark.desktop
def test_shift_counts_as_a_modifier_and_letters_do_not(make_hotkey):
    hotkey, _ = make_hotkey()
    xdo("keydown", "a")
    try:
        time.sleep(0.3)
        assert not hotkey.modifiers_held()
    finally:
        xdo("keyup", "a")
    xdo("keydown", "shift")
    try:
        deadline = time.monotonic() + 3.0
        while not hotkey.modifiers_held() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert hotkey.modifiers_held()
    finally:
        xdo("keyup", "shift")
    assert hotkey.wait_modifiers_released(3.0)


@pytest.mark.desktop
def test_hold_mode(make_hotkey):
    _, rec = make_hotkey(mode="hold", hold_delay_s=0.15)
    t0 = time.monotonic()
    xdo("keydown", "ctrl")
    try:
        assert rec.wait_for(HotkeyEvent.HOLD_START, 3.0), rec.events
        assert rec.time_of(HotkeyEvent.HOLD_START) - t0 >= 0.1
        assert HotkeyEvent.HOLD_END not in rec.events
    finally:
        xdo("keyup", "ctrl")
    assert rec.wait_for(HotkeyEvent.HOLD_END, 3.0), rec.events
    # Ctrl+C in hold mode is a shortcut, not a hold
    rec.clear()
    xdo("key", "ctrl+c")
    time.sleep(0.5)
    assert rec.events == []


@pytest.mark.desktop
def test_right_ctrl_only(make_hotkey):
    _, rec = make_hotkey(key="ctrl_r")
    xdo(*TRIPLE)  # left Ctrl
    time.sleep(0.8)
    assert rec.events == []
    xdo("key", "--delay", "80", RIGHT_CTRL_KEYCODE, RIGHT_CTRL_KEYCODE, RIGHT_CTRL_KEYCODE)
    assert rec.wait_for(TRIGGER, 5.0), rec.events


@pytest.mark.desktop
def test_key_names_of_real_pynput_keys(x_env):
    from pynput.keyboard import Key, KeyCode

    assert key_name(Key.ctrl) == "ctrl"
    assert key_name(Key.ctrl_l) == "ctrl"  # an alias of Key.ctrl in pynput
    assert key_name(Key.ctrl_r) == "ctrl_r"
    assert key_name(Key.space) == "space"
    assert key_name(KeyCode.from_char("A")) == "a"
    assert key_name(KeyCode.from_vk(0xFE03)) == "alt_gr"  # ISO_Level3_Shift
    assert key_name(KeyCode.from_vk(12345)) == "vk12345"
    assert key_name(None) == "unknown"


# -- lifecycle ----------------------------------------------------------------------


@pytest.mark.desktop
def test_stop_is_prompt_idempotent_and_leaves_no_threads(x_env):
    before = set(threading.enumerate())
    hotkey = GlobalHotkey(TapDetector(HotkeyConfig()), lambda event: None)
    hotkey.stop()  # never started: a no-op
    hotkey.start()
    assert hotkey.running
    t0 = time.monotonic()
    hotkey.stop()
    # pynput alone would sleep until the next key event (its stop() is never flushed)
    assert time.monotonic() - t0 < 0.9
    hotkey.stop()
    assert not hotkey.running
    leftover = [t for t in set(threading.enumerate()) - before if t.is_alive()]
    assert leftover == []


@pytest.mark.desktop
def test_stop_from_inside_the_callback_and_restart(x_env):
    rec = Recorder()
    hotkey = GlobalHotkey(TapDetector(HotkeyConfig()), rec)
    rec.also = lambda event: hotkey.stop() if event is TRIGGER else None
    hotkey.start()
    try:
        xdo(*TRIPLE)
        assert rec.wait_for(TRIGGER, 5.0)
        deadline = time.monotonic() + 3.0
        while hotkey.running and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not hotkey.running
        rec.also = None
        hotkey.start()  # a stopped hotkey can be started again
        assert_live(rec)
    finally:
        hotkey.stop()


@pytest.mark.desktop
def test_listener_that_dies_while_starting_is_unavailable_not_a_hang(x_env, monkeypatch):
    # e.g. RECORD advertised but unusable: pynput's thread ends without becoming ready,
    # and then both its wait() and its stop() would block forever
    import pynput.keyboard

    class DyingListener(pynput.keyboard.Listener):
        def _run(self) -> None:
            return

    monkeypatch.setattr(pynput.keyboard, "Listener", DyingListener)
    hotkey = GlobalHotkey(TapDetector(HotkeyConfig()), lambda event: None)
    t0 = time.monotonic()
    with pytest.raises(errors.HotkeyUnavailable, match="did not start"):
        hotkey.start()
    assert time.monotonic() - t0 < 3.0
    assert not hotkey.running
    hotkey.stop()


@pytest.mark.desktop
def test_hotkey_available_with_a_display(x_env):
    works, why = hotkey_available()
    assert works, why
    assert x_env in why


# -- no usable display ----------------------------------------------------------------


def _assert_unavailable(*words: str) -> None:
    hotkey = GlobalHotkey(TapDetector(HotkeyConfig()), lambda event: None)
    with pytest.raises(errors.HotkeyUnavailable) as caught:
        hotkey.start()
    assert caught.value.code == "ERR_HOTKEY_UNAVAILABLE"
    for word in words:
        assert word in caught.value.message
    assert not hotkey.running
    hotkey.stop()
    works, why = hotkey_available()
    assert not works
    for word in words:
        assert word in why


def test_no_display_is_unavailable(monkeypatch):
    for var in ("DISPLAY", "WAYLAND_DISPLAY", "XDG_SESSION_TYPE", "PYNPUT_BACKEND"):
        monkeypatch.delenv(var, raising=False)
    _assert_unavailable("DISPLAY")


def test_wayland_only_session_is_unavailable(monkeypatch):
    for var in ("DISPLAY", "PYNPUT_BACKEND"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-0")
    monkeypatch.setenv("XDG_SESSION_TYPE", "wayland")
    _assert_unavailable("Wayland")


def test_display_without_a_server_is_unavailable(monkeypatch):
    if Path("/tmp/.X11-unix/X987").exists():
        pytest.skip("an X server really is running on :987 here")
    for var in ("WAYLAND_DISPLAY", "XDG_SESSION_TYPE", "PYNPUT_BACKEND"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("DISPLAY", ":987")
    t0 = time.monotonic()
    _assert_unavailable(":987")
    assert time.monotonic() - t0 < 5.0


@pytest.mark.desktop
def test_server_without_record_is_unavailable(monkeypatch, tmp_path):
    require_tools(*X_TOOLS)
    with Xvfb(tmp_path / "xvfb.log", "-extension", "RECORD") as server:
        for var in ("WAYLAND_DISPLAY", "XDG_SESSION_TYPE", "PYNPUT_BACKEND"):
            monkeypatch.delenv(var, raising=False)
        monkeypatch.setenv("DISPLAY", server.display)
        _assert_unavailable("RECORD")
