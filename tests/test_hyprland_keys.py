"""Hyprland's event socket as a key source, against a Unix socket that speaks its line format."""
from __future__ import annotations

import queue
import socket
import threading
import time

import pytest

from ctrlspeak import config as config_mod
from ctrlspeak import errors
from ctrlspeak.desktop import hyprland_keys as hk


class FakeHyprland:
    """Hyprland's .socket2.sock: accepts one client and writes what ``send`` is given."""

    def __init__(self, path) -> None:
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(str(path))
        self._server.listen(1)
        self._client: socket.socket | None = None
        self._accepted = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        self._client, _ = self._server.accept()
        self._accepted.set()

    def send(self, data: bytes) -> None:
        assert self._accepted.wait(5), "nobody connected"
        self._client.sendall(data)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
        self._server.close()


@pytest.fixture
def session(tmp_path):
    folder = tmp_path / "hypr" / "abc_123"
    folder.mkdir(parents=True)
    fake = FakeHyprland(folder / ".socket2.sock")
    yield {"XDG_RUNTIME_DIR": str(tmp_path), "HYPRLAND_INSTANCE_SIGNATURE": "abc_123"}, fake
    fake.close()


def taps(source: hk.HyprlandKeys) -> queue.Queue:
    got: queue.Queue = queue.Queue()
    source.start(lambda k: got.put(("press", k)), lambda k: got.put(("release", k)))
    return got


def test_the_socket_is_found_where_hyprland_puts_it(tmp_path, session):
    env, _ = session
    assert hk.socket_path(env) == str(tmp_path / "hypr" / "abc_123" / ".socket2.sock")
    assert hk.socket_path({**env, "HYPRLAND_INSTANCE_SIGNATURE": "../x"}) is None
    assert hk.socket_path({"XDG_RUNTIME_DIR": str(tmp_path)}) is None
    legacy = {"HYPRLAND_INSTANCE_SIGNATURE": "old"}
    assert hk.socket_path(legacy, exists=lambda p: p == "/tmp/hypr/old/.socket2.sock") == "/tmp/hypr/old/.socket2.sock"


def test_our_events_are_taps_and_every_other_line_is_dropped(session):
    env, fake = session
    source = hk.HyprlandKeys(hk.socket_path(env))
    got = taps(source)
    try:
        # split across writes and mixed with the events Hyprland sends anyway
        fake.send(b"activewindow>>foot,~\nworkspace>>2\ncustom>>ctrlspeak-")
        fake.send(b"tap\ncustom>>someone-else\ncustom>>ctrlspeak-tap-r\n")
        assert [got.get(timeout=5) for _ in range(4)] == [("press", "ctrl"), ("release", "ctrl"),
                                                          ("press", "ctrl_r"), ("release", "ctrl_r")]
        time.sleep(0.2)
        assert got.empty()
        assert source.alive
    finally:
        source.stop()
    assert not source.alive


def test_an_over_long_line_is_dropped_whole():
    lines = hk.LineSplitter()
    assert lines.feed(b"x" * (hk.MAX_LINE + 1)) == []
    assert lines.feed(b"custom>>ctrlspeak-tap\ncustom>>ctrlspeak-tap\n") == [b"custom>>ctrlspeak-tap"]


def test_hyprland_closing_the_socket_ends_the_source(session):
    env, fake = session
    source = hk.HyprlandKeys(hk.socket_path(env))
    taps(source)
    fake.send(b"workspace>>1\n")
    fake.close()
    deadline = time.monotonic() + 5
    while source.alive and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not source.alive
    source.stop()


def test_no_socket_says_which_lines_to_add(tmp_path):
    with pytest.raises(errors.HotkeyUnavailable) as caught:
        hk.HyprlandKeys(str(tmp_path / "gone.sock")).start(lambda k: None, lambda k: None)
    assert hk.BINDING_LINES[0] in caught.value.message and "unreachable" in caught.value.message


def test_the_daemon_counts_three_hyprland_taps_as_a_trigger(session):
    from ctrlspeak.daemon import key_sources
    from ctrlspeak.desktop.hotkey import HotkeyEvent

    env, fake = session
    posted: queue.Queue = queue.Queue()
    closers: list = []
    hotkey = key_sources.start_hotkey(config_mod.Config(), closers, post=posted.put, publish=print,
                                 env={**env, "WAYLAND_DISPLAY": "wayland-1"})
    try:
        assert hotkey is not None and hotkey.source_name == "compositor"
        fake.send(b"custom>>ctrlspeak-tap\n" * 3)
        events = [posted.get(timeout=5), posted.get(timeout=5)]
        assert events == [HotkeyEvent.ARMED, HotkeyEvent.TRIGGER]
    finally:
        for close in reversed(closers):
            close()
