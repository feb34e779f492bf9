"""The evdev key source: keyboards told from other devices, raw input_event records decoded, and the
reader thread over real file descriptors (pipes and socket pairs standing in for /dev/input/event*).

The build machine has no /dev/input: real kernel devices are not exercised here, only their
byte layout and capability lists as captured from real machines.
"""
from __future__ import annotations

import logging
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ctrlspeak import errors
from ctrlspeak.desktop import evdev_keys
from ctrlspeak.desktop.evdev_codes import (
    EV_KEY, EV_MSC, EV_SYN, EVENT, KEY_LEFTCTRL, KEY_LEFTSHIFT, KEY_NAMES, KEY_RIGHTCTRL, decode, decode_many,
    is_keyboard, pack,
)
from ctrlspeak.desktop.evdev_keys import EvdevKeys, evdev_problem
from ctrlspeak.desktop.hotkey import HotkeyConfig, HotkeyEvent, TapDetector
from ctrlspeak.desktop.keyboard import GlobalHotkey

KEY_Q, KEY_Z, KEY_A, KEY_F13, KEY_POWER, MSC_SCAN, SYN_REPORT = 16, 44, 30, 183, 116, 4, 0

# --- captured capability lists (evdev's device.capabilities(), non-verbose) -----------------------

_LEDS = {0x11: [0, 1, 2]}
USB_KEYBOARD = {0: [0, 1, 4, 17, 20], 1: list(range(1, 120)) + [122, 123, 124, 125, 126, 127, 183, 184, 185],
                4: [4], 20: [0, 1], **_LEDS}
LAPTOP_KEYBOARD = {  # "AT Translated Set 2 keyboard"
    0: [0, 1, 4, 17, 20], 1: list(range(1, 89)) + [96, 97, 98, 99, 100, 102, 103, 104, 105, 106, 107, 108, 109,
                                                   110, 111, 119, 125, 126, 127], 4: [4], 20: [0, 1], **_LEDS}
YUBIKEY = {0: [0, 1, 4, 17, 20], 1: list(range(1, 0x7F)) + [183, 184], 4: [4], 20: [0, 1], 0x11: [0, 1, 2, 3, 4]}
MOUSE = {0: [0, 1, 2, 4], 1: [272, 273, 274, 275, 276], 2: [0, 1, 6, 8, 11, 12], 4: [4]}
TOUCHPAD = {0: [0, 1, 3], 1: [272, 325, 328, 330, 333, 334, 335],
            3: [(0, (0, 0, 1244, 0, 0, 12)), (1, (0, 0, 826, 0, 0, 12)), (47, (0, 0, 4, 0, 0, 0))]}
POWER_BUTTON = {0: [0, 1], 1: [KEY_POWER]}
LID_SWITCH = {0: [0, 5], 5: [0]}
VIDEO_BUS = {0: [0, 1], 1: [224, 225, 227, 241, 242, 243, 244]}  # brightness and display keys


@pytest.mark.parametrize("caps, keyboard", [
    (USB_KEYBOARD, True), (LAPTOP_KEYBOARD, True),
    # a YubiKey is a USB keyboard (it types its one-time passwords): watched like one; its
    # letters only ever break an armed Ctrl sequence, as typing would
    (YUBIKEY, True),
    (MOUSE, False), (TOUCHPAD, False), (POWER_BUTTON, False), (LID_SWITCH, False), (VIDEO_BUS, False), ({}, False),
], ids=["usb", "at-translated-set-2", "yubikey", "mouse", "touchpad", "power-button", "lid-switch", "video-bus",
        "nothing"])
def test_only_keyboards_are_watched(caps, keyboard):
    assert is_keyboard(caps) is keyboard


def test_letters_without_a_ctrl_are_not_a_keyboard():
    caps = {1: [c for c in USB_KEYBOARD[1] if c not in (KEY_LEFTCTRL, KEY_RIGHTCTRL)]}
    assert not is_keyboard(caps)


# --- decoding raw records ---------------------------------------------------------------------------

def test_the_record_layout_is_the_kernels():
    assert EVENT.format == "llHHi" and EVENT.size == 24  # two 8-byte longs, u16, u16, s32 on 64-bit Linux


@pytest.mark.parametrize("record, expected", [
    (pack(EV_KEY, KEY_LEFTCTRL, 1, 1700000000, 5), ("ctrl", True)),
    (pack(EV_KEY, KEY_LEFTCTRL, 0), ("ctrl", False)),
    (pack(EV_KEY, KEY_RIGHTCTRL, 1), ("ctrl_r", True)),
    (pack(EV_KEY, KEY_LEFTSHIFT, 1), ("shift", True)),
    (pack(EV_KEY, KEY_A, 0), ("a", False)),
    (pack(EV_KEY, KEY_Q, 1), ("q", True)),
    (pack(EV_KEY, KEY_LEFTCTRL, 2), None),  # auto-repeat
    (pack(EV_KEY, KEY_F13, 1), None),  # a code without a name here
    (pack(EV_KEY, 0x110, 1), None),  # BTN_LEFT
    (pack(EV_SYN, SYN_REPORT, 0), None),
    (pack(EV_MSC, MSC_SCAN, 0x700E0), None),  # the scan code that precedes a key event
], ids=["ctrl-press", "ctrl-release", "right-ctrl", "shift", "letter-release", "q", "repeat", "unknown", "button",
        "syn", "msc"])
def test_decode(record, expected):
    assert decode(record) == expected


def test_names_match_the_pynput_side():
    assert {KEY_NAMES[c] for c in (KEY_LEFTCTRL, KEY_RIGHTCTRL)} == {"ctrl", "ctrl_r"}
    assert all(name == name.lower() for name in KEY_NAMES.values())


def test_decode_many_keeps_the_incomplete_tail():
    stream = tap_bytes(KEY_LEFTCTRL) + pack(EV_KEY, KEY_Z, 1)
    keys, tail = decode_many(stream[:-5])
    assert keys == [("ctrl", True), ("ctrl", False)] and len(tail) == EVENT.size - 5
    keys, tail = decode_many(tail + stream[-5:])
    assert keys == [("z", True)] and tail == b""


# --- fakes standing in for /dev/input ---------------------------------------------------------------

def key_bytes(code: int, value: int) -> bytes:
    # as a keyboard sends it: the scan code, the key, the report
    return pack(EV_MSC, MSC_SCAN, 0x700E0) + pack(EV_KEY, code, value) + pack(EV_SYN, SYN_REPORT, 0)


def tap_bytes(code: int) -> bytes:
    return pack(EV_KEY, code, 1) + pack(EV_KEY, code, 0)


class FakeDevice:
    """A device node: its fd is a pipe's (or socket's) read end that the test writes records into."""

    def __init__(self, name: str, caps: dict, fd: int, feed: Callable[[bytes], None]) -> None:
        self.name, self._caps, self.fd, self.feed = name, caps, fd, feed
        self.closed = False

    def capabilities(self) -> dict:
        return self._caps

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            os.close(self.fd)

    def tap(self, code: int, times: int = 1, gap_s: float = 0.05) -> None:
        for _ in range(times):
            self.feed(key_bytes(code, 1))
            self.feed(key_bytes(code, 0))
            time.sleep(gap_s)


class FakeInput:
    """The folder of device nodes: which paths exist, what opening each gives, what was opened."""

    def __init__(self) -> None:
        self.nodes: dict[str, tuple[str, dict, str]] = {}
        self.opened: dict[str, FakeDevice] = {}
        self._writers: list[object] = []
        self.lock = threading.Lock()

    def add(self, path: str, name: str, caps: dict, kind: str = "pipe") -> None:
        with self.lock:
            self.nodes[path] = (name, caps, kind)

    def list_devices(self) -> list[str]:
        with self.lock:
            return sorted(self.nodes)

    def open_device(self, path: str) -> FakeDevice:
        with self.lock:
            name, caps, kind = self.nodes[path]
        if kind == "denied":
            raise PermissionError(13, "Permission denied", path)
        if kind == "socket":
            ours, theirs = socket.socketpair()
            self._writers.append(theirs)
            device = FakeDevice(name, caps, ours.detach(), theirs.sendall)
            device.peer = theirs  # type: ignore[attr-defined]
        else:
            r, w = os.pipe()
            os.set_blocking(r, False)
            self._writers.append(w)
            device = FakeDevice(name, caps, r, lambda data, w=w: os.write(w, data))
        with self.lock:
            self.opened[path] = device
        return device

    def wait_opened(self, path: str, timeout: float = 3.0) -> FakeDevice:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if path in self.opened:
                    return self.opened[path]
            time.sleep(0.01)
        raise AssertionError(f"{path} was never opened")

    def close(self) -> None:
        for w in self._writers:
            try:
                w.close() if isinstance(w, socket.socket) else os.close(w)  # type: ignore[arg-type]
            except OSError:
                pass


class Recorder:
    def __init__(self) -> None:
        self.events: list[HotkeyEvent] = []
        self.cond = threading.Condition()

    def __call__(self, event: HotkeyEvent) -> None:
        with self.cond:
            self.events.append(event)
            self.cond.notify_all()

    def wait_for(self, event: HotkeyEvent, timeout: float = 5.0) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: event in self.events, timeout)


@pytest.fixture
def fake_input() -> Iterator[FakeInput]:
    fake = FakeInput()
    yield fake
    fake.close()


@pytest.fixture
def hotkey(fake_input: FakeInput) -> Iterator[Callable[..., tuple[GlobalHotkey, Recorder]]]:
    started: list[GlobalHotkey] = []

    def make(**source_kw: object) -> tuple[GlobalHotkey, Recorder]:
        source_kw.setdefault("watch_dir", None)
        source_kw.setdefault("rescan_s", 0.05)
        source = EvdevKeys(fake_input.list_devices, fake_input.open_device, **source_kw)  # type: ignore[arg-type]
        rec = Recorder()
        hk = GlobalHotkey(TapDetector(HotkeyConfig()), rec, source=source)
        hk.start()
        started.append(hk)
        return hk, rec

    yield make
    for hk in started:
        hk.stop()


# --- the reader thread --------------------------------------------------------------------------------

def test_triple_ctrl_through_evdev_triggers(fake_input, hotkey):
    fake_input.add("/dev/input/event3", "AT Translated Set 2 keyboard", LAPTOP_KEYBOARD)
    fake_input.add("/dev/input/event5", "Logitech USB Optical Mouse", MOUSE)
    fake_input.add("/dev/input/event0", "Power Button", POWER_BUTTON)
    fake_input.add("/dev/input/event1", "Lid Switch", LID_SWITCH)
    hk, rec = hotkey()
    assert hk.source_name == "evdev" and hk.running
    for path in ("/dev/input/event5", "/dev/input/event0", "/dev/input/event1"):
        assert fake_input.opened[path].closed  # looked at once, never watched
    keyboard = fake_input.opened["/dev/input/event3"]
    keyboard.tap(KEY_LEFTCTRL, 3)
    assert rec.wait_for(HotkeyEvent.TRIGGER), rec.events
    assert rec.events == [HotkeyEvent.ARMED, HotkeyEvent.TRIGGER]


def test_a_letter_between_taps_and_held_modifiers(fake_input, hotkey):
    fake_input.add("/dev/input/event3", "kbd", USB_KEYBOARD)
    hk, rec = hotkey()
    keyboard = fake_input.opened["/dev/input/event3"]
    keyboard.tap(KEY_LEFTCTRL, 2)
    keyboard.tap(KEY_A)
    keyboard.tap(KEY_LEFTCTRL)
    assert rec.wait_for(HotkeyEvent.ARMED)
    time.sleep(0.7)
    assert HotkeyEvent.TRIGGER not in rec.events, rec.events
    keyboard.feed(key_bytes(KEY_LEFTSHIFT, 1) + key_bytes(KEY_LEFTSHIFT, 2))
    deadline = time.monotonic() + 3
    while not hk.modifiers_held() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert hk.modifiers_held()
    keyboard.feed(key_bytes(KEY_LEFTSHIFT, 0))
    assert hk.wait_modifiers_released(3.0)


def test_a_keyboard_plugged_in_later_is_picked_up(fake_input, hotkey):
    fake_input.add("/dev/input/event3", "built-in", LAPTOP_KEYBOARD)
    _, rec = hotkey()
    fake_input.add("/dev/input/event20", "USB keyboard", USB_KEYBOARD)
    later = fake_input.wait_opened("/dev/input/event20")
    later.tap(KEY_RIGHTCTRL, 3)
    assert rec.wait_for(HotkeyEvent.TRIGGER), rec.events


def test_inotify_finds_a_new_keyboard_without_rescanning(tmp_path, fake_input, hotkey):
    try:
        evdev_keys._Inotify(str(tmp_path)).close()
    except (OSError, AttributeError) as exc:
        pytest.skip(f"no inotify here: {exc}")
    first = str(tmp_path / "event3")
    Path(first).touch()
    fake_input.add(first, "built-in", LAPTOP_KEYBOARD)
    _, rec = hotkey(watch_dir=str(tmp_path), rescan_s=3600)  # only inotify can find the next one
    later = str(tmp_path / "event7")
    fake_input.add(later, "USB keyboard", USB_KEYBOARD)
    Path(later).touch()
    fake_input.wait_opened(later).tap(KEY_LEFTCTRL, 3)
    assert rec.wait_for(HotkeyEvent.TRIGGER), rec.events


def test_a_device_that_errors_is_dropped_and_the_others_read_on(fake_input, hotkey):
    fake_input.add("/dev/input/event3", "built-in", LAPTOP_KEYBOARD)
    fake_input.add("/dev/input/event9", "flaky", USB_KEYBOARD, kind="socket")
    hk, rec = hotkey()
    flaky = fake_input.opened["/dev/input/event9"]
    # unread data at the peer when it closes: our read fails with ECONNRESET, as an unplugged
    # device's fails with ENODEV
    os.write(flaky.fd, b"x")
    flaky.peer.close()  # type: ignore[attr-defined]
    deadline = time.monotonic() + 3
    while not flaky.closed and time.monotonic() < deadline:
        time.sleep(0.01)
    assert flaky.closed
    assert hk.running
    fake_input.opened["/dev/input/event3"].tap(KEY_LEFTCTRL, 3)
    assert rec.wait_for(HotkeyEvent.TRIGGER), rec.events


def test_no_key_reaches_the_log(fake_input, hotkey, caplog):
    caplog.set_level(logging.DEBUG)  # the root logger: every module's records
    fake_input.add("/dev/input/event3", "built-in", LAPTOP_KEYBOARD)
    fake_input.add("/dev/input/event9", "flaky", USB_KEYBOARD, kind="socket")
    fake_input.add("/dev/input/event4", "locked", USB_KEYBOARD, kind="denied")
    hk, rec = hotkey()
    keyboard = fake_input.opened["/dev/input/event3"]
    keyboard.tap(KEY_Q)
    keyboard.tap(KEY_Z)
    keyboard.feed(key_bytes(KEY_LEFTSHIFT, 1) + key_bytes(KEY_LEFTSHIFT, 2) + key_bytes(KEY_LEFTSHIFT, 0))
    keyboard.feed(key_bytes(KEY_F13, 1) + key_bytes(KEY_F13, 0))
    keyboard.tap(KEY_LEFTCTRL, 3)
    assert rec.wait_for(HotkeyEvent.TRIGGER)
    fake_input.opened["/dev/input/event9"].feed(key_bytes(KEY_RIGHTCTRL, 1))
    os.write(fake_input.opened["/dev/input/event9"].fd, b"x")
    fake_input.opened["/dev/input/event9"].peer.close()  # type: ignore[attr-defined]
    time.sleep(0.2)
    hk.stop()
    assert caplog.records, "nothing was logged: the check below would prove nothing"
    assert any("built-in" in r.getMessage() for r in caplog.records)  # device names are fine
    sent_names = {"q", "z", "shift", "ctrl", "ctrl_r", "key_q", "key_leftctrl"}
    sent_codes = {str(c) for c in (KEY_Q, KEY_Z, KEY_LEFTSHIFT, KEY_F13, KEY_LEFTCTRL, KEY_RIGHTCTRL, MSC_SCAN)}
    for record in caplog.records:
        text = " ".join([record.getMessage(), record.exc_text or ""]).lower()
        tokens = set(re.findall(r"[a-z0-9_]+", text))
        assert not tokens & (sent_names | sent_codes), (record.name, record.getMessage())


def test_stop_is_idempotent_bounded_and_restartable(fake_input):
    fake_input.add("/dev/input/event3", "kbd", USB_KEYBOARD)
    before = set(threading.enumerate())
    source = EvdevKeys(fake_input.list_devices, fake_input.open_device, watch_dir=None, rescan_s=0.05)
    source.stop()  # never started: nothing to do
    seen: list[str] = []
    source.start(seen.append, lambda name: None)
    assert source.alive
    t0 = time.monotonic()
    source.stop()
    source.stop()
    assert time.monotonic() - t0 < 1.0 and not source.alive
    assert fake_input.opened["/dev/input/event3"].closed
    assert [t for t in set(threading.enumerate()) - before if t.is_alive()] == []
    source.start(seen.append, lambda name: None)  # opens the device again
    fake_input.opened["/dev/input/event3"].tap(KEY_A)
    deadline = time.monotonic() + 3
    while not seen and time.monotonic() < deadline:
        time.sleep(0.01)
    source.stop()
    assert seen == ["a"]


@pytest.mark.parametrize("nodes, words", [
    ([], "no input devices"),
    ([("m", MOUSE, "pipe"), ("p", POWER_BUTTON, "pipe")], "keyboard"),
    ([("k", USB_KEYBOARD, "denied"), ("m", MOUSE, "pipe")], "input group"),
])
def test_start_without_a_readable_keyboard_is_unavailable(fake_input, nodes, words):
    for path, caps, kind in nodes:
        fake_input.add(f"/dev/input/event-{path}", path, caps, kind)
    source = EvdevKeys(fake_input.list_devices, fake_input.open_device, watch_dir=None)
    with pytest.raises(errors.HotkeyUnavailable) as caught:
        source.start(lambda name: None, lambda name: None)
    assert caught.value.code == "ERR_HOTKEY_UNAVAILABLE" and words in caught.value.message
    assert not source.alive
    assert all(device.closed for device in fake_input.opened.values())


# --- evdev_problem ---------------------------------------------------------------------------------

def test_evdev_problem(fake_input, tmp_path):
    ask = lambda: evdev_problem(fake_input.list_devices, fake_input.open_device)  # noqa: E731
    assert "no input devices" in ask()
    fake_input.add("/dev/input/event5", "mouse", MOUSE)
    assert "keyboard" in ask()
    fake_input.add("/dev/input/event2", "kbd", USB_KEYBOARD, kind="denied")
    assert "no permission" in ask() and "input group" in ask()
    fake_input.add("/dev/input/event3", "kbd", LAPTOP_KEYBOARD)
    assert ask() is None
    assert all(device.closed for device in fake_input.opened.values())  # a check leaves nothing open


def test_evdev_problem_without_dev_input(tmp_path, monkeypatch):
    monkeypatch.setattr(evdev_keys.sys, "platform", "linux")
    assert "no " + str(tmp_path / "missing") in evdev_problem(input_dir=str(tmp_path / "missing"))


def test_the_fix_names_the_commands():
    for words in ("sudo usermod -aG input $USER", "log out", "/etc/udev/rules.d/70-ctrlspeak.rules",
                  'KERNEL=="event*", SUBSYSTEM=="input", TAG+="uaccess"',
                  "sudo udevadm control --reload && sudo udevadm trigger"):
        assert words in evdev_keys.INPUT_GROUP_FIX


def test_importing_the_source_and_the_daemon_side_leaves_evdev_out():
    import subprocess
    import sys

    code = ("import sys, ctrlspeak.desktop.evdev_keys, ctrlspeak.desktop.keyboard, ctrlspeak.daemon.wiring, "
            "ctrlspeak.doctor; print('evdev' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
