"""The text pipeline end to end: the real daemon, tiny-en (lowercase, no punctuation), a
dictionary word added by `ctrlspeak words add` while the daemon runs (its SIGHUP reload),
the default capitals and trailing period (tiny-en writes neither), pasted into the Tk window;
history keeps both.
Then a dictation with a spoken "new line" lands on two lines (tiny-en was trained on spoken
punctuation: scripts/tinyen/datasets.py, say_commands).
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.desktop.daemon_proc import SENTENCE, dictate
from tests.desktop.harness import Desktop, PasteTarget, wait_until

pytestmark = pytest.mark.desktop


def test_a_dictionary_word_added_while_running_lands_as_written(desktop: Desktop, paste_target: PasteTarget,
                                                                start_daemon, tmp_path: Path):
    config = tmp_path / "config" / "ctrlspeak" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text('spoken_punctuation = true\n')
    daemon = start_daemon(env_overrides={"CTRLSPEAK_AUTO_CAPITALIZE": None, "CTRLSPEAK_TRAILING_PERIOD": None})
    daemon.wait_ready()
    added = daemon.ctl("words", "add", "my mother", "Mom")
    assert added.returncode == 0, added.stderr
    assert "the running daemon reloads its config" in added.stderr
    wait_until(lambda: "config reloaded" in daemon.log_text(), 20, "the daemon's config reload")
    paste_target.focus()
    triple = ("key", "--delay", "80", "ctrl", "ctrl", "ctrl")
    dictate(desktop, daemon, lambda: desktop.xdotool(*triple), lambda: desktop.xdotool(*triple))
    text = paste_target.wait_for_text(lambda t: t.strip() != "", timeout=60)
    expected = "Call Mom tomorrow morning and send the report."
    assert SENTENCE.replace("my mother", "Mom") + "." == expected[0].lower() + expected[1:]
    assert text.strip() == expected

    def stored() -> list:
        return json.loads(daemon.ctl("history", "--json").stdout)["entries"]

    wait_until(stored, 20, "the transcript in history (written after the paste and the clipboard's restore)")
    assert stored()[0]["text"] == expected

    # the same window again: a space after the first dictation's period, a capital, and the
    # spoken "new line" as a line break
    spoken = "call my mother tomorrow morning new line and send the report"
    dictate(desktop, daemon, lambda: desktop.xdotool(*triple), lambda: desktop.xdotool(*triple), spoken)
    both = paste_target.wait_for_text(lambda t: "\n" in t.strip(), timeout=60)
    assert both.strip() == expected + " Call Mom tomorrow morning\nAnd send the report."
    wait_until(lambda: len(stored()) == 2, 20, "the second transcript in history")
    assert stored()[0]["raw_text"] == spoken
