"""The Wayland harness itself: sway comes up as uid 4242, windows map and take focus, wtype types,
wl-clipboard round-trips, and everything stops by PID."""
from __future__ import annotations

import os

import pytest

from tests.wayland.sway import SWAY_UID, FootTarget, GtkTarget, SwaySession

pytestmark = pytest.mark.wayland


def test_sway_runs_unprivileged_with_its_own_sockets(sway: SwaySession):
    assert sway.env["WAYLAND_DISPLAY"].startswith("wayland-")
    assert os.path.basename(sway.env["SWAYSOCK"]).startswith("sway-ipc.")
    assert "DISPLAY" not in sway.env
    runtime = os.stat(sway.env["XDG_RUNTIME_DIR"])
    assert runtime.st_uid == SWAY_UID and runtime.st_mode & 0o777 == 0o700
    assert sway.startup_s < 10


def test_typing_lands_in_the_focused_gtk_window(sway: SwaySession, gtk_target: GtkTarget):
    assert sway.focused_app_id() == gtk_target.app_id
    sway.wtype("-s", "30", "hello")
    assert gtk_target.wait_for_text("hello") == "hello"


def test_typing_lands_in_the_focused_terminal(sway: SwaySession, foot_target: FootTarget):
    assert sway.focused_app_id() == foot_target.app_id
    sway.wtype("-s", "30", "hello")
    foot_target.wait_for_text("hello")
    assert foot_target.data() == b"hello"


def test_focus_moves_between_windows(sway: SwaySession, gtk_target: GtkTarget, foot_target: FootTarget):
    gtk_target.focus()
    assert sway.focused_app_id() == gtk_target.app_id
    foot_target.focus()
    assert sway.focused_app_id() == foot_target.app_id


def test_the_clipboard_round_trips(sway: SwaySession):
    sway.clipboard_set("ünïcode ✓ text")
    assert sway.clipboard_get() == "ünïcode ✓ text"


def test_stop_ends_every_process_it_started(sway: SwaySession, gtk_target: GtkTarget):
    # (the fixtures only vouch that sway and GTK are installed: this test starts a session of its own)
    with SwaySession() as session:
        session.check()
        pid = session._sway.pid
        target = GtkTarget(session)
        target_pid = target._proc.pid
    for gone in (pid, target_pid):
        with pytest.raises(ProcessLookupError):
            os.kill(gone, 0)
