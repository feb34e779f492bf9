"""The GlobalShortcuts portal key source, over a real dbus-daemon with a fake portal on it."""
from __future__ import annotations

import queue
import time

import pytest

from ctrlspeak import errors
from ctrlspeak.desktop import portal as portal_bus
from ctrlspeak.desktop import portal_keys as pk
from tests.portal_fake import FakePortal, SessionBus


@pytest.fixture
def bus(tmp_path):
    session = SessionBus(tmp_path)
    yield session
    session.close()


@pytest.fixture
def portal(bus):
    fake = FakePortal(bus.address)
    yield fake
    fake.close()


class Recorder:
    def __init__(self) -> None:
        self.keys: queue.Queue = queue.Queue()
        self.said: queue.Queue = queue.Queue()

    def press(self, key: str) -> None:
        self.keys.put(("press", key))

    def release(self, key: str) -> None:
        self.keys.put(("release", key))

    def next_key(self, timeout: float = 5.0):
        return self.keys.get(timeout=timeout)

    def no_more_keys(self) -> bool:
        time.sleep(0.3)
        return self.keys.empty()


def started(bus, rec: Recorder, **kw) -> pk.PortalKeys:
    source = pk.PortalKeys(bus_address=bus.address, say=rec.said.put, **kw)
    source.start(rec.press, rec.release)
    return source


def test_request_path_follows_the_portal_rule():
    assert portal_bus.request_path(":1.42", "tok") == "/org/freedesktop/portal/desktop/request/1_42/tok"


def test_the_shortcut_is_bound_and_its_keys_are_told(bus, portal):
    rec = Recorder()
    source = started(bus, rec)
    try:
        said = rec.said.get(timeout=5)
        assert said == "global keys: Ctrl+Alt+D toggles dictation (a desktop shortcut, through xdg-desktop-portal)"
        bind = next(body for member, body in portal.calls if member == "BindShortcuts")
        (shortcut_id, props), = bind[1]
        assert shortcut_id == pk.SHORTCUT_ID and props["preferred_trigger"].value == pk.PREFERRED_TRIGGER
        assert source.alive
    finally:
        source.stop()
    assert not source.alive
    assert "Close" in [member for member, _ in portal.calls], "stop closes the session: the desktop drops it"


def test_tap_mode_one_activation_is_one_tap_and_other_shortcuts_are_ignored(bus, portal):
    rec = Recorder()
    source = started(bus, rec)
    try:
        rec.said.get(timeout=5)
        portal.emit("Activated", shortcut="someone-else")
        portal.emit("Activated", session="/org/freedesktop/portal/desktop/session/1_9/other")
        portal.emit("Activated")
        assert rec.next_key() == ("press", pk.KEY)
        assert rec.next_key() == ("release", pk.KEY)
        portal.emit("Deactivated")  # the tap already ended
        assert rec.no_more_keys()
    finally:
        source.stop()


def test_hold_mode_presses_on_activated_and_releases_on_deactivated(bus, portal):
    rec = Recorder()
    source = started(bus, rec, hold=True)
    try:
        rec.said.get(timeout=5)
        portal.emit("Activated")
        assert rec.next_key() == ("press", pk.KEY)
        assert rec.no_more_keys(), "held: no release until Deactivated"
        portal.emit("Deactivated")
        assert rec.next_key() == ("release", pk.KEY)
    finally:
        source.stop()


def test_a_cancelled_dialog_is_said_with_what_to_do(bus):
    fake = FakePortal(bus.address, bind_code=1)
    rec = Recorder()
    source = started(bus, rec)
    try:
        said = rec.said.get(timeout=5)
        assert "cancelled" in said and "ctrlspeak toggle" in said
    finally:
        source.stop()
        fake.close()


def test_keys_without_a_trigger_and_hyprland_are_said_plainly():
    bound = {"shortcuts": [(pk.SHORTCUT_ID, {"trigger_description": ""})]}
    assert "without keys" in pk.bound_message(0, bound, "kde")
    hypr = pk.bound_message(0, bound, "hyprland")
    assert f"global, :{pk.SHORTCUT_ID}" in hypr and "fires it only" in hypr


def test_no_portal_is_an_error_at_start_saying_what_to_do(bus):
    rec = Recorder()
    t0 = time.monotonic()
    with pytest.raises(errors.HotkeyUnavailable) as caught:
        started(bus, rec)
    assert time.monotonic() - t0 < pk.START_TIMEOUT_S, "a bus without the portal answers at once"
    assert "GlobalShortcuts" in caught.value.message and "ctrlspeak toggle" in caught.value.message


def test_a_portal_without_global_shortcuts_is_an_error(bus):
    fake = FakePortal(bus.address, interface=False)
    try:
        with pytest.raises(errors.HotkeyUnavailable) as caught:
            started(bus, Recorder())
        assert "offers no GlobalShortcuts portal" in caught.value.message
        assert not [m for m, _ in fake.calls if m == "CreateSession"]
    finally:
        fake.close()


def test_no_bus_is_an_error(tmp_path):
    with pytest.raises(errors.HotkeyUnavailable) as caught:
        pk.PortalKeys(bus_address=f"unix:path={tmp_path / 'none'}").start(lambda k: None, lambda k: None)
    assert "no D-Bus session bus" in caught.value.message


def test_the_daemon_toggles_on_one_activation(bus, portal, monkeypatch):
    """Wiring: hotkey_backend = "portal" gives a detector that triggers on one tap."""
    from ctrlspeak import config as config_mod
    from ctrlspeak.daemon import key_sources
    from ctrlspeak.desktop.hotkey import HotkeyEvent

    posted: queue.Queue = queue.Queue()
    notices: list = []
    closers: list = []
    cfg = config_mod.Config(hotkey_backend="portal")
    env = {"DBUS_SESSION_BUS_ADDRESS": bus.address, "WAYLAND_DISPLAY": "wayland-1"}
    hotkey = key_sources.start_hotkey(cfg, closers, post=posted.put, publish=notices.append, env=env,
                                 say=lambda m: None)
    try:
        assert hotkey is not None, notices
        assert hotkey.source_name == "portal"
        portal.emit("Activated")
        assert posted.get(timeout=5) == HotkeyEvent.TRIGGER
    finally:
        for close in reversed(closers):
            close()


def test_auto_under_wayland_takes_the_portal_after_evdev_and_sway():
    from ctrlspeak.daemon.key_sources import pick_backend

    wayland = {"WAYLAND_DISPLAY": "wayland-1"}
    assert pick_backend("auto", wayland, evdev_ok=False, compositor_ok=False, portal_ok=True) == "portal"
    assert pick_backend("auto", wayland, evdev_ok=False, compositor_ok=True, portal_ok=True) == "compositor"
    assert pick_backend("auto", wayland, evdev_ok=True, compositor_ok=True, portal_ok=True) == "evdev"
    assert pick_backend("auto", wayland, evdev_ok=False, compositor_ok=False, portal_ok=False) == "none"
    assert pick_backend("auto", {"DISPLAY": ":0"}, evdev_ok=False, compositor_ok=False, portal_ok=True) == "x11"
