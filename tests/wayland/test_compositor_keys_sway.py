"""CompositorKeys on the real sway: the release bindings on Ctrl become taps, a TapDetector counts
three of them as the toggle, and Ctrl still works as a modifier in the focused applications.

The keys come from wtype's virtual keyboard, the only keyboard here (no /dev/input). A hardware
keyboard sends a Ctrl key event and, from its xkb state, the Ctrl modifier; `SwaySession.chord`
sends both the same way (wtype's -P alone sets no modifier, -M alone sends no key).
"""
from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from ctrlspeak.desktop.compositor_keys import CompositorKeys
from ctrlspeak.desktop.hotkey import HotkeyConfig, HotkeyEvent, TapDetector
from ctrlspeak.desktop.shortcuts import shortcut_text
from tests.desktop.harness import wait_until
from tests.wayland.sway import FootTarget, GtkTarget, SwaySession

pytestmark = pytest.mark.wayland


class Taps:
    """Our callbacks: every press/release with its time, and a detector fed with them."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, float]] = []
        self.events: list[HotkeyEvent] = []
        self.detector = TapDetector(HotkeyConfig(mode="tap", key="ctrl", taps=3, window_s=0.5))
        self._lock = threading.Lock()

    def press(self, key: str) -> None:
        self._feed("press", key)

    def release(self, key: str) -> None:
        self._feed("release", key)

    def _feed(self, kind: str, key: str) -> None:
        t = time.monotonic()
        with self._lock:
            self.calls.append((kind, key, t))
            self.events += getattr(self.detector, kind)(key, t)

    def pairs(self) -> list[tuple[str, str]]:
        with self._lock:
            return [(kind, key) for kind, key, _ in self.calls]


@pytest.fixture
def taps(sway: SwaySession) -> Iterator[Taps]:
    seen = Taps()
    keys = CompositorKeys(sway.env["SWAYSOCK"])
    keys.start(seen.press, seen.release)
    try:
        yield seen
    finally:
        keys.stop()
    assert not keys.alive


def test_three_ctrl_taps_are_three_pairs_and_the_toggle(sway: SwaySession, gtk_target: GtkTarget, taps: Taps):
    sway.tap_ctrl(3)
    wait_until(lambda: len(taps.pairs()) >= 6, 10, "three press/release pairs")
    time.sleep(0.3)  # nothing more comes
    assert taps.pairs() == [("press", "ctrl"), ("release", "ctrl")] * 3
    assert HotkeyEvent.TRIGGER in taps.events
    assert taps.events == [HotkeyEvent.ARMED, HotkeyEvent.TRIGGER]


def test_the_right_ctrl_is_ctrl_r(sway: SwaySession, gtk_target: GtkTarget, taps: Taps):
    sway.tap_ctrl(1, key="Control_R")
    wait_until(lambda: len(taps.pairs()) >= 2, 10, "a press/release pair")
    assert taps.pairs() == [("press", "ctrl_r"), ("release", "ctrl_r")]


def test_ctrl_chords_still_reach_gtk_and_are_not_taps(sway: SwaySession, gtk_target: GtkTarget, taps: Taps):
    sway.wtype("-s", "30", "hello")
    gtk_target.wait_for_text("hello")
    sway.clipboard_set("before")
    typed = len(gtk_target.key_events())
    sway.chord("a", "c")  # select all, copy
    wait_until(lambda: sway.clipboard_get() == "hello", 10, "Ctrl+A Ctrl+C to copy the window's text")
    assert gtk_target.key_events()[typed:typed + 2] == ["press Control_L", "press a"]
    time.sleep(0.3)
    assert taps.pairs() == [], "a chord must not count as a tap (the --release binding must not fire)"


def test_ctrl_v_still_pastes_into_gtk(sway: SwaySession, gtk_target: GtkTarget, taps: Taps):
    sway.clipboard_set("pasted text")
    time.sleep(0.3)  # GTK reads the new selection's offer asynchronously
    sway.chord("v")
    assert gtk_target.wait_for_text("pasted text") == "pasted text"
    time.sleep(0.3)
    assert taps.pairs() == []


def test_ctrl_c_still_reaches_the_terminal(sway: SwaySession, foot_target: FootTarget, taps: Taps):
    sway.wtype("-s", "30", "x")
    foot_target.wait_for_text("x")
    sway.chord("c")
    wait_until(lambda: foot_target.data() == b"x\x03", 10, "Ctrl+C as 0x03 in the terminal")
    time.sleep(0.3)
    assert taps.pairs() == []


def test_a_lone_tap_fires_and_the_app_still_sees_ctrl(sway: SwaySession, gtk_target: GtkTarget, taps: Taps):
    """What "the bound key is swallowed" means for a --release binding on a modifier: nothing is
    taken from the app. It gets the Ctrl press and release as if nothing were bound."""
    before = len(gtk_target.key_events())
    sway.tap_ctrl(1)
    wait_until(lambda: len(taps.pairs()) >= 2, 10, "the tap")
    wait_until(lambda: len(gtk_target.key_events()) >= before + 2, 5, "the window's key events")
    assert gtk_target.key_events()[before:] == ["press Control_L", "release Control_L"]


def test_the_printed_sway_lines_are_sway_commands_and_only_ours_are_taps(sway: SwaySession, gtk_target: GtkTarget,
                                                                         taps: Taps):
    lines = [line for line in shortcut_text("sway").splitlines() if line.startswith("bindsym ")]
    assert len(lines) == 3
    marker = sway.workdir / "logs" / "chord-ran"
    try:
        for line in lines:
            assert b'"success": true' in sway.swaymsg(line).stdout, line
        # the chord line as printed, but running something we can see instead of `ctrlspeak toggle`
        sway.swaymsg("bindsym Ctrl+Alt+d exec touch " + str(marker))
        sway.logs.chmod(0o777)  # `exec` runs as sway's uid
        sway.wtype("-s", "30", "-M", "ctrl", "-M", "alt", "-k", "d", "-m", "alt", "-m", "ctrl", "-p", "F20")
        wait_until(marker.exists, 10, "the Ctrl+Alt+d binding to run")
        time.sleep(0.3)
        assert taps.pairs() == [], "a binding that is not ours must not be a tap"
    finally:
        sway.swaymsg("unbindsym Ctrl+Alt+d", check=False)
        sway.logs.chmod(0o755)
