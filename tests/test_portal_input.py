"""The RemoteDesktop portal keyboard, over a real dbus-daemon with a fake portal on it."""
from __future__ import annotations

import queue
import stat
import time

import pytest

from ctrlspeak import errors
from ctrlspeak.desktop import portal_input as pi
from tests.portal_fake import FakePortal, SessionBus

CTRL, SHIFT, V = 0xFFE3, 0xFFE1, 0x76


@pytest.fixture
def bus(tmp_path):
    session = SessionBus(tmp_path)
    yield session
    session.close()


def wait_ready(keyboard: pi.PortalKeyboard, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not keyboard.ready:
        assert time.monotonic() < deadline, "the remote keyboard session never opened"
        time.sleep(0.02)


def test_keysyms_go_through_the_layout_not_key_positions():
    assert pi.chord_events("ctrl+v") == [(CTRL, 1), (V, 1), (V, 0), (CTRL, 0)]
    assert pi.chord_events("ctrl+shift+v") == [(CTRL, 1), (SHIFT, 1), (V, 1), (V, 0), (SHIFT, 0), (CTRL, 0)]
    assert [pi.keysym(c) for c in "aZ é€\n\t"] == [0x61, 0x5A, 0x20, 0xE9, 0x010020AC, 0xFF0D, 0xFF09]
    assert list(pi.text_events("a\r\n")) == [(0x61, 1), (0x61, 0), (0xFF0D, 1), (0xFF0D, 0)]


def test_granted_once_it_pastes_types_any_text_and_is_restored_next_run(bus, tmp_path):
    fake = FakePortal(bus.address)
    token_file = tmp_path / "state" / "portal-restore-token"
    keyboard = pi.PortalKeyboard(bus.address, token_file)
    try:
        keyboard.start()
        wait_ready(keyboard)
        keyboard.chord("ctrl+v")
        assert fake.keys == [(CTRL, 1), (V, 1), (V, 0), (CTRL, 0)]
        fake.keys.clear()
        keyboard.type("Grüße €")
        assert fake.keys == list(pi.text_events("Grüße €"))
        select = next(body for member, body in fake.calls if member == "SelectDevices")
        assert select[1]["types"].value == pi.KEYBOARD and select[1]["persist_mode"].value == 2
        assert "restore_token" not in select[1], "nothing to restore on the first run"
    finally:
        keyboard.close()
    assert not keyboard.ready
    assert token_file.read_text().strip() == "restore-1"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600, "the token lets this user type without asking"
    fake.calls.clear()
    again = pi.PortalKeyboard(bus.address, token_file)
    try:
        again.start()
        wait_ready(again)
        select = next(body for member, body in fake.calls if member == "SelectDevices")
        assert select[1]["restore_token"].value == "restore-1", "the next run asks the desktop to restore"
    finally:
        again.close()
        fake.close()


def test_a_refused_dialog_is_said_once_and_keys_fail_clearly(bus, tmp_path):
    fake = FakePortal(bus.address, start_code=1)
    said: queue.Queue = queue.Queue()
    keyboard = pi.PortalKeyboard(bus.address, tmp_path / "token", say=said.put)
    try:
        keyboard.start()
        message = said.get(timeout=5)
        assert "cancelled" in message and "ydotool or the clipboard" in message
        assert not keyboard.ready
        with pytest.raises(errors.PasteFailed, match="not open"):
            keyboard.chord("ctrl+v")
        assert fake.keys == [] and not (tmp_path / "token").exists()
    finally:
        keyboard.close()
        fake.close()


def test_a_desktop_without_remote_desktop_stays_quiet(bus, tmp_path):
    fake = FakePortal(bus.address, remote=False)
    said: queue.Queue = queue.Queue()
    keyboard = pi.PortalKeyboard(bus.address, tmp_path / "token", say=said.put)
    try:
        keyboard.start()
        deadline = time.monotonic() + 2
        while not any(m == "CreateSession" for m, _ in fake.calls) and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.2)
        assert not keyboard.ready and said.empty(), "the next tool in line serves; nothing to tell"
    finally:
        keyboard.close()
        fake.close()


def test_the_daemon_asks_for_it_on_gnome_and_kde_wayland_only(bus, tmp_path, monkeypatch):
    from ctrlspeak.daemon import key_sources

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    base = {"WAYLAND_DISPLAY": "wayland-1", "DBUS_SESSION_BUS_ADDRESS": bus.address}
    closers: list = []
    assert key_sources.open_remote_keys(closers, say=print, env={**base, "XDG_CURRENT_DESKTOP": "sway"}) is None
    assert key_sources.open_remote_keys(closers, say=print, env={"DISPLAY": ":0", "XDG_CURRENT_DESKTOP": "GNOME",
                                                            "DBUS_SESSION_BUS_ADDRESS": bus.address}) is None
    fake = FakePortal(bus.address)
    try:
        keyboard = key_sources.open_remote_keys(closers, say=print, env={**base, "XDG_CURRENT_DESKTOP": "KDE"})
        wait_ready(keyboard)
        assert (tmp_path / "state" / "ctrlspeak" / "portal-restore-token").read_text().strip() == "restore-1"
        assert closers == [keyboard.close]
    finally:
        for close in closers:
            close()
        fake.close()


def test_a_portal_that_went_away_is_a_paste_failure_not_a_crash(bus, tmp_path):
    fake = FakePortal(bus.address)
    keyboard = pi.PortalKeyboard(bus.address, tmp_path / "token")
    try:
        keyboard.start()
        wait_ready(keyboard)
        fake.close()  # the portal process ended
        with pytest.raises(errors.PasteFailed, match="refused the keys"):
            keyboard.chord("ctrl+v")
    finally:
        keyboard.close()
