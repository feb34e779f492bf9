"""The tray icon docks into a real XEmbed tray (trayer) and its title follows the state, and
the words while they are spoken."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.desktop.daemon_proc import LONG
from tests.desktop.harness import STACK_TOOLS, Desktop, require, speak, wait_until

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


def test_the_icons_tooltip_shows_the_words_while_they_are_spoken(desktop, start_daemon):
    daemon = start_daemon("--live", "--output", "stdout", env_overrides={"CTRLSPEAK_TRAY": "true"})
    daemon.wait_ready()
    wait_until(lambda: _icon_title(desktop).startswith("ctrlspeak: ready"), 20, "the icon to say ready")
    daemon.ctl("start")
    daemon.wait_state("recording", timeout=15)
    desktop.mic.play(speak(LONG[1]), lead_s=0.3, tail_s=0.8)
    said = set(LONG[1].split())

    def live_words() -> list[str]:  # the title's words, the tentative tail's brackets taken off
        words = _icon_title(desktop).removeprefix("ctrlspeak: ").replace("[", " ").replace("]", " ").split()
        return words if len(set(words) & said) >= 2 else []

    title = wait_until(live_words, 30, "the first words in the icon's title")
    assert daemon.status()["state"] == "recording", f"the words showed while the person was still speaking: {title}"
    assert desktop.mic.wait_played(timeout=60)
    daemon.ctl("stop")
    wait_until(lambda: _icon_title(desktop).startswith(("ctrlspeak: done", "ctrlspeak: ready")), 60,
               "the icon to leave the live text once it is delivered")


def test_without_a_tray_host_the_daemon_runs_quietly():
    with Desktop(start_tray=False) as bare:
        from ctrlspeak.desktop.tray import tray_host

        ok, why = tray_host(bare.env)
        assert not ok and "no system tray" in why
