"""The tray icon docks into a real XEmbed tray (trayer) and its title follows the state."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.desktop.harness import STACK_TOOLS, Desktop, require, wait_until

pytestmark = pytest.mark.desktop


@pytest.fixture(scope="module")
def desktop_stack() -> Iterator[Desktop]:  # overrides conftest's: this one runs a tray host
    require((*STACK_TOOLS, "trayer"))
    with Desktop(start_tray=True) as stack:
        wait_until(stack.tray_ready, 15, "the tray host")
        yield stack


def _icon_title(desktop: Desktop) -> str:
    found = desktop.xdotool("search", "--name", "^ctrlspeak: ", check=False).stdout.split()
    return desktop.xdotool("getwindowname", found[0], check=False).stdout.strip() if found else ""


def test_icon_docks_and_follows_the_state(desktop, start_daemon):
    daemon = start_daemon(env_overrides={"CTRLSPEAK_TRAY": "true"})
    daemon.wait_ready()
    wait_until(lambda: _icon_title(desktop).startswith("ctrlspeak: ready"), 20, "the icon to say ready")
    daemon.ctl("start")
    wait_until(lambda: _icon_title(desktop).startswith("ctrlspeak: recording"), 20, "the icon to say recording")
    daemon.ctl("cancel")
    # "idle: cancelled", then back to "ready" (the quiet event after a dictation ends)
    wait_until(lambda: _icon_title(desktop).startswith(("ctrlspeak: idle: cancelled", "ctrlspeak: ready")), 20,
               "the icon to leave recording")
    wait_until(lambda: _icon_title(desktop).startswith("ctrlspeak: ready"), 20, "the icon to say ready again")


def test_without_a_tray_host_the_daemon_runs_quietly():
    with Desktop(start_tray=False) as bare:
        from ctrlspeak.desktop.tray import tray_host

        ok, why = tray_host(bare.env)
        assert not ok and "no system tray" in why
