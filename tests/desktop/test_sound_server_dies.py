"""The sound server is killed mid-recording: what was recorded is kept and transcribed."""
from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest

from tests.desktop.daemon_proc import SCENARIOS, SENTENCE
from tests.desktop.harness import STACK_TOOLS, Desktop, require, speak

pytestmark = pytest.mark.desktop


@pytest.fixture(scope="module")
def desktop_stack() -> Iterator[Desktop]:  # a private stack: this test kills part of it
    require(STACK_TOOLS)
    with Desktop() as stack:
        yield stack


@pytest.fixture
def desktop(desktop_stack: Desktop) -> Desktop:
    return desktop_stack  # no reset(): it checks that every part is alive


def test_pulseaudio_killed_mid_recording(desktop, paste_target, start_daemon):
    daemon = start_daemon()
    daemon.wait_ready()
    paste_target.focus()
    daemon.ctl("start")
    daemon.wait_state("recording")
    desktop.mic.play(speak(SENTENCE), lead_s=0.3, tail_s=0.3)
    assert desktop.mic.wait_played(timeout=60)
    pulse = [pid for name, pid in desktop.started if name == "pulseaudio"]
    assert pulse
    os.kill(pulse[0], signal.SIGKILL)
    assert paste_target.wait_for_text(lambda t: t.strip() != "", timeout=60).strip() == SENTENCE
    note = desktop.wait_for_notification(lambda n: "ERR_AUDIO_DEVICE" in n.summary, timeout=30)
    assert daemon.proc.poll() is None
    # what the console (journald under systemd) shows: one clear line (issue 10, item 20)
    console = daemon.log_text()
    assert "Expression '" not in console and "ALSA lib" not in console, console
    errors = [line for line in console.splitlines() if "ERR_AUDIO_DEVICE" in line]
    assert len(errors) == 1, errors
    assert "--device-name" not in console and "ctrlspeak run --mic NAME" in errors[0]
    assert "no audio from default" not in console and "(the default input)" in note.body, note.body
    SCENARIOS.append(("sound server killed mid recording", "audio so far transcribed, words at the cursor, told"))
    SCENARIOS.append(("#20 sound server killed: what the console shows",
                      "one ERR_AUDIO_DEVICE line naming the source and the real --mic flag; no raw ALSA lines"))
