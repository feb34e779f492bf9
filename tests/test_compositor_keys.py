"""CompositorKeys: the i3-ipc frames, which binding events count, and the source against a fake
sway IPC server on a real unix socket (the real sway is in tests/wayland)."""
from __future__ import annotations

import json
import logging
import socket
import threading
import time
from pathlib import Path

import pytest

from ctrlspeak import errors
from ctrlspeak.desktop.compositor_keys import (
    BINDING_LINES, EVENT_BINDING, HEADER, MARKER, SUBSCRIBE, CompositorKeys, FrameDecoder, FrameError,
    encode_frame, tap_key,
)

# as sway 1.7 sent it for `bindsym --release Control_L nop ctrlspeak-tap` (tests/wayland)
SWAY_EVENT = (b'{ "change": "run", "binding": { "command": "nop ctrlspeak-tap", "event_state_mask": [ ], '
              b'"input_codes": [ ], "input_code": 0, "symbols": [ "Control_L" ], "symbol": "Control_L", '
              b'"input_type": "keyboard" } }')


def binding(command: str = MARKER, symbol: str = "Control_L", change: str = "run") -> bytes:
    return encode_frame(EVENT_BINDING, json.dumps({"change": change, "binding": {
        "command": command, "symbol": symbol, "symbols": [symbol], "input_type": "keyboard"}}))


# -- frames ------------------------------------------------------------------------------------

def test_a_frame_is_magic_length_type_and_payload():
    frame = encode_frame(SUBSCRIBE, '["binding"]')
    assert frame[:6] == b"i3-ipc"
    assert HEADER.unpack_from(frame)[1:] == (11, SUBSCRIBE)
    assert frame[HEADER.size:] == b'["binding"]'


def test_the_decoder_joins_frames_split_anywhere():
    stream = encode_frame(SUBSCRIBE, b'{"success": true}') + encode_frame(EVENT_BINDING, SWAY_EVENT)
    decoder = FrameDecoder()
    got = [frame for byte in range(len(stream)) for frame in decoder.feed(stream[byte:byte + 1])]
    assert got == [(SUBSCRIBE, b'{"success": true}'), (EVENT_BINDING, SWAY_EVENT)]
    assert list(FrameDecoder().feed(stream)) == got


def test_the_decoder_refuses_what_is_not_i3_ipc():
    with pytest.raises(FrameError):
        list(FrameDecoder().feed(b"HTTP/1.1 200 OK\r\n\r\n"))
    with pytest.raises(FrameError):
        list(FrameDecoder().feed(HEADER.pack(b"i3-ipc", 1 << 30, EVENT_BINDING)))


def test_only_our_binding_events_are_taps():
    assert tap_key(EVENT_BINDING, SWAY_EVENT) == "ctrl"
    assert tap_key(*next(FrameDecoder().feed(binding(symbol="Control_R")))) == "ctrl_r"
    assert tap_key(EVENT_BINDING, SWAY_EVENT.replace(b"ctrlspeak-tap", b"something-else")) is None
    assert tap_key(*next(FrameDecoder().feed(binding(command="exec foot")))) is None
    assert tap_key(SUBSCRIBE, SWAY_EVENT) is None  # a reply, not an event
    assert tap_key(EVENT_BINDING, b"not json") is None
    assert tap_key(EVENT_BINDING, b"[1, 2]") is None


def test_the_binding_lines_are_the_release_of_each_ctrl():
    assert BINDING_LINES == ("bindsym --release Control_L nop ctrlspeak-tap",
                             "bindsym --release Control_R nop ctrlspeak-tap")


# -- the source against a fake sway -----------------------------------------------------------

class FakeSway:
    """Accepts one IPC client, answers its subscription, then sends what a test asks."""

    def __init__(self, path: Path, accept: bool = True) -> None:
        self.path = str(path)
        self.accept = accept
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(self.path)
        self.server.listen(1)
        self.client: socket.socket | None = None
        self.subscribed = threading.Event()
        self.request: tuple[int, bytes] | None = None
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        self.client, _ = self.server.accept()
        decoder = FrameDecoder()
        while self.request is None:
            self.request = next(iter(decoder.feed(self.client.recv(4096))), None)
        reply = json.dumps({"success": self.accept}).encode()
        self.client.sendall(encode_frame(SUBSCRIBE, reply))
        self.subscribed.set()

    def send(self, data: bytes) -> None:
        assert self.subscribed.wait(5)
        self.client.sendall(data)

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
        self.server.close()


@pytest.fixture
def sway(tmp_path: Path):
    fake = FakeSway(tmp_path / "sway-ipc.sock")
    yield fake
    fake.close()


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.cond = threading.Condition()

    def press(self, key: str) -> None:
        with self.cond:
            self.calls.append(("press", key))
            self.cond.notify_all()

    def release(self, key: str) -> None:
        with self.cond:
            self.calls.append(("release", key))
            self.cond.notify_all()

    def wait(self, n: int, timeout: float = 5.0) -> list[tuple[str, str]]:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.calls) >= n, timeout), self.calls
            return list(self.calls)


def test_each_binding_event_is_one_press_and_release(sway: FakeSway):
    keys, seen = CompositorKeys(sway.path), Recorder()
    keys.start(seen.press, seen.release)
    try:
        assert sway.request == (SUBSCRIBE, b'["binding"]')
        assert keys.alive
        # split mid-frame, mixed with bindings that are not ours
        stream = binding() + binding(command="exec foot") + binding(symbol="Control_R")
        sway.send(stream[:10])
        time.sleep(0.05)
        sway.send(stream[10:])
        assert seen.wait(4) == [("press", "ctrl"), ("release", "ctrl"), ("press", "ctrl_r"), ("release", "ctrl_r")]
        time.sleep(0.1)
        assert len(seen.calls) == 4
    finally:
        keys.stop()
    assert not keys.alive


def test_an_event_in_the_same_read_as_the_reply_is_not_lost(tmp_path: Path):
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(tmp_path / "s"))
    server.listen(1)

    def serve() -> None:
        client, _ = server.accept()
        client.recv(4096)
        client.sendall(encode_frame(SUBSCRIBE, b'{"success": true}') + binding())
        time.sleep(2)
        client.close()
    threading.Thread(target=serve, daemon=True).start()
    keys, seen = CompositorKeys(str(tmp_path / "s")), Recorder()
    keys.start(seen.press, seen.release)
    try:
        assert seen.wait(2) == [("press", "ctrl"), ("release", "ctrl")]
    finally:
        keys.stop()
        server.close()


def test_stop_is_idempotent_bounded_and_works_from_a_callback(sway: FakeSway):
    keys = CompositorKeys(sway.path)
    stopped = threading.Event()

    def press(key: str) -> None:
        keys.stop()  # from the reader thread itself: must not join itself
        stopped.set()
    keys.start(press, lambda key: None)
    sway.send(binding())
    assert stopped.wait(5)
    began = time.monotonic()
    keys.stop()
    keys.stop()
    assert time.monotonic() - began < 1.5
    CompositorKeys(sway.path).stop()  # never started


def test_a_failing_callback_does_not_end_the_source(sway: FakeSway):
    keys, seen = CompositorKeys(sway.path), Recorder()
    first = [True]

    def press(key: str) -> None:
        if first[0]:
            first[0] = False
            raise RuntimeError("boom")
        seen.press(key)
    keys.start(press, seen.release)
    try:
        sway.send(binding() + binding())
        assert seen.wait(2) == [("press", "ctrl"), ("release", "ctrl")]
        assert keys.alive
    finally:
        keys.stop()


def test_sway_going_away_ends_the_source(sway: FakeSway):
    keys = CompositorKeys(sway.path)
    keys.start(lambda key: None, lambda key: None)
    sway.subscribed.wait(5)
    sway.close()
    deadline = time.monotonic() + 5
    while keys.alive and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not keys.alive
    keys.stop()


def test_no_swaysock_says_which_lines_to_add(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("SWAYSOCK", raising=False)
    with pytest.raises(errors.HotkeyUnavailable) as info:
        CompositorKeys().start(lambda key: None, lambda key: None)
    assert info.value.code == "ERR_HOTKEY_UNAVAILABLE"
    assert "SWAYSOCK" in info.value.message
    for line in BINDING_LINES:
        assert line in info.value.message


def test_an_unreachable_socket_is_hotkey_unavailable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SWAYSOCK", str(tmp_path / "gone.sock"))
    with pytest.raises(errors.HotkeyUnavailable) as info:
        CompositorKeys().start(lambda key: None, lambda key: None)
    assert "unreachable" in info.value.message and BINDING_LINES[0] in info.value.message


def test_a_refused_subscription_is_hotkey_unavailable(tmp_path: Path):
    fake = FakeSway(tmp_path / "s", accept=False)
    try:
        with pytest.raises(errors.HotkeyUnavailable, match="refused"):
            CompositorKeys(fake.path).start(lambda key: None, lambda key: None)
    finally:
        fake.close()


def test_not_sway_on_the_socket_is_hotkey_unavailable(tmp_path: Path):
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(tmp_path / "s"))
    server.listen(1)

    def serve() -> None:
        client, _ = server.accept()
        client.sendall(b"SSH-2.0-OpenSSH_9.2\r\n" + b"x" * 20)
        time.sleep(1)
        client.close()
    threading.Thread(target=serve, daemon=True).start()
    try:
        with pytest.raises(errors.HotkeyUnavailable, match="i3-ipc"):
            CompositorKeys(str(tmp_path / "s")).start(lambda key: None, lambda key: None)
    finally:
        server.close()


def test_keys_are_never_logged(sway: FakeSway, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.DEBUG)
    keys, seen = CompositorKeys(sway.path), Recorder()
    keys.start(seen.press, seen.release)
    try:
        sway.send(binding() + binding(command="exec secret-thing", symbol="Mod4+Return"))
        seen.wait(2)
        time.sleep(0.1)
    finally:
        keys.stop()
    text = caplog.text
    assert "Control" not in text and "secret-thing" not in text and "ctrlspeak-tap" not in text
