"""End to end on Wayland, with real parts only: the real `ctrlspeak run` daemon (its spawned worker,
the bundled tiny-en model) inside a headless sway session (WAYLAND_DISPLAY, SWAYSOCK, no DISPLAY),
keys through sway's IPC (hotkey_backend = "compositor", the release bindings of
`ctrlspeak shortcuts`), the virtual microphone of the desktop stack's PulseAudio, and the text
landing in a native GTK3 window and in foot, pasted with wtype or typed.
"""
from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from tests.desktop.daemon_proc import SENTENCE, RunningDaemon, dictate
from tests.desktop.harness import Desktop, wait_until
from tests.wayland.sway import FootTarget, GtkTarget, SwaySession

pytestmark = [pytest.mark.wayland, pytest.mark.desktop]

USERS_CLIPBOARD = "the user's own clipboard"


@pytest.fixture
def wayland_daemon(desktop: Desktop, sway: SwaySession, start_daemon) -> Callable[..., RunningDaemon]:
    """Start the daemon as a sway session's program: its Wayland variables, none of X's."""
    def start(*extra: str) -> RunningDaemon:
        session = {var: sway.env[var] for var in ("WAYLAND_DISPLAY", "SWAYSOCK", "XDG_RUNTIME_DIR",
                                                  "XDG_SESSION_TYPE", "XDG_CURRENT_DESKTOP")}
        daemon = start_daemon(*extra, env_overrides={"DISPLAY": None, "CTRLSPEAK_HOTKEY_BACKEND": "compositor",
                                                     **session})
        daemon.wait_ready()
        wait_until(lambda: "global hotkey listening (compositor)" in daemon.log_text(), 30,
                   f"the compositor key source to start:\n{daemon.log_text()[-3000:]}")
        return daemon
    return start


def _landed(target) -> str:
    """The target's text once the sentence's length has arrived (typing lands a key at a time),
    and a moment more, so anything past it shows too."""
    target.wait_for_text(lambda t: len(t.strip()) >= len(SENTENCE), timeout=60)
    time.sleep(0.5)
    return target.text()


def _check_quiet(daemon: RunningDaemon) -> None:
    assert SENTENCE not in daemon.log_text(), "transcripts must not be logged above DEBUG"


def test_triple_ctrl_dictation_is_pasted_into_gtk_and_the_clipboard_restored(
        desktop: Desktop, sway: SwaySession, gtk_target: GtkTarget, wayland_daemon):
    daemon = wayland_daemon("--output", "paste")
    sway.clipboard_set(USERS_CLIPBOARD)
    gtk_target.focus()
    dictate(desktop, daemon, lambda: sway.tap_ctrl(3), lambda: sway.tap_ctrl(3))
    assert _landed(gtk_target).strip() == SENTENCE
    wait_until(lambda: sway.clipboard_get() == USERS_CLIPBOARD, 10, "the clipboard to be restored")
    _check_quiet(daemon)


def test_triple_ctrl_dictation_is_typed_into_gtk(desktop: Desktop, sway: SwaySession, gtk_target: GtkTarget,
                                                wayland_daemon):
    daemon = wayland_daemon("--output", "type")
    sway.clipboard_set(USERS_CLIPBOARD)
    gtk_target.focus()
    dictate(desktop, daemon, lambda: sway.tap_ctrl(3), lambda: sway.tap_ctrl(3))
    assert _landed(gtk_target).strip() == SENTENCE
    assert sway.clipboard_get() == USERS_CLIPBOARD, "typing must leave the clipboard alone"
    _check_quiet(daemon)


def test_in_foot_the_text_lands_through_ctrl_shift_v(desktop: Desktop, sway: SwaySession, foot_target: FootTarget,
                                                    wayland_daemon):
    daemon = wayland_daemon("--output", "paste")
    sway.clipboard_set(USERS_CLIPBOARD)
    foot_target.focus()
    dictate(desktop, daemon, lambda: sway.tap_ctrl(3), lambda: sway.tap_ctrl(3))
    text = _landed(foot_target)
    assert b"\x16" not in foot_target.data(), "a bare Ctrl+V reached the terminal instead of a paste"
    assert text.strip() == SENTENCE
    wait_until(lambda: sway.clipboard_get() == USERS_CLIPBOARD, 10, "the clipboard to be restored")
    _check_quiet(daemon)


def test_ctrlspeak_toggle_starts_and_stops_under_wayland(desktop: Desktop, sway: SwaySession,
                                                        gtk_target: GtkTarget, wayland_daemon):
    daemon = wayland_daemon("--output", "paste")
    gtk_target.focus()
    dictate(desktop, daemon, lambda: daemon.ctl("toggle"), lambda: daemon.ctl("toggle"))
    assert _landed(gtk_target).strip() == SENTENCE
    _check_quiet(daemon)
