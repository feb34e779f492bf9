"""PortAudio between recordings, end to end: the real daemon shuts it down once the
microphone has been closed a moment (memory back, devices re-scanned at the next
recording), and every dictation after that, start/stop sounds on, still lands word for word."""
from __future__ import annotations

import pytest

from tests.desktop.daemon_proc import SENTENCE, dictate
from tests.desktop.harness import wait_until

pytestmark = pytest.mark.desktop

RELEASED = "PortAudio shut down until the next recording"


def _alsa_plugins(pid: int) -> set[str]:
    """ALSA plugin modules mapped into the process (loaded by PortAudio's device scan)."""
    with open(f"/proc/{pid}/maps", encoding="utf-8", errors="replace") as f:
        return {line.split("/")[-1].strip() for line in f if "libasound_module_" in line}


def test_portaudio_is_released_between_recordings_and_comes_back(desktop, paste_target, start_daemon):
    daemon = start_daemon(env_overrides={"CTRLSPEAK_LOG_LEVEL": "DEBUG", "CTRLSPEAK_SOUNDS": "true"})
    daemon.wait_ready()
    wait_until(lambda: daemon.log_text().count(RELEASED) >= 1, 30, "the release after the start-up check")
    assert not _alsa_plugins(daemon.proc.pid), "released: ALSA's plugins are unloaded"

    paste_target.focus()
    for round_ in (1, 2):
        dictate(desktop, daemon, lambda: daemon.ctl("start"), lambda: daemon.ctl("stop"))
        text = paste_target.wait_for_text(lambda t: t.count(SENTENCE) >= round_, timeout=120)
        assert text.strip() == " ".join([SENTENCE] * round_), text  # word for word, one space between
        wait_until(lambda: daemon.log_text().count(RELEASED) >= round_ + 1, 30,
                   f"the release after dictation {round_}")
        assert not _alsa_plugins(daemon.proc.pid)
    assert "Traceback" not in daemon.log_text()
