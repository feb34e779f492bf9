"""PortAudio between recordings: shut down when the microphone has been closed a moment,
started again by the next recording (recorder.portaudio / release_portaudio), and the
daemon's timing of it (a fake clock, recorder and worker)."""
from __future__ import annotations

import numpy as np
import pytest

from ctrlspeak.daemon.microphone import AUDIO_RELEASE_S
from ctrlspeak.audio import capture as recorder
from tests.fakes import FakeClock, dictate, make_daemon, pump

sd = pytest.importorskip("sounddevice")


def test_portaudio_goes_down_and_the_next_use_starts_it_again():
    recorder.portaudio()
    assert sd._initialized == 1
    assert recorder.release_portaudio() and sd._initialized == 0
    assert not recorder.release_portaudio(), "already down: nothing to do"
    recorder.list_input_devices()  # any use starts it again
    assert sd._initialized == 1
    assert recorder.portaudio() is sd and sd._initialized == 1, "never initialised twice"


class CountingRecorder:
    def __init__(self) -> None:
        self.is_open = False

    def begin(self) -> np.ndarray:
        self.is_open = True
        return np.zeros(0, np.float32)

    def end(self) -> None:
        pass

    def open(self) -> None:
        self.is_open = True

    def close(self) -> None:
        self.is_open = False


@pytest.fixture
def released(monkeypatch) -> list[float]:
    calls: list[float] = []
    monkeypatch.setattr(recorder, "release_portaudio", lambda: calls.append(1.0) or True)
    return calls


def test_the_daemon_releases_portaudio_a_moment_after_the_microphone_closes(monkeypatch, released, workers):
    clock = FakeClock()
    d, _ = make_daemon(0.0, clock)
    d._mic.source = CountingRecorder()
    pump(d, lambda: d.snapshot()["state"] == "ready")
    assert d._next_wait() is None, "nothing due: the loop blocks"
    dictate(d, clock)
    assert d._next_wait() == pytest.approx(AUDIO_RELEASE_S), "the loop wakes for it, no polling"
    clock.now += AUDIO_RELEASE_S - 0.1
    d._audio_tick()
    assert released == []
    clock.now += 0.1
    d._audio_tick()
    assert released == [1.0] and d._next_wait() is None
    d.supervisor.close()


def test_never_while_a_recording_or_the_preroll_has_the_microphone(monkeypatch, released, workers):
    clock = FakeClock()
    d, _ = make_daemon(0.0, clock)
    d._mic.source = CountingRecorder()
    pump(d, lambda: d.snapshot()["state"] == "ready")
    dictate(d, clock)
    assert d.start_recording("test") is None  # a new recording before the release was due
    clock.now += 10 * AUDIO_RELEASE_S
    d._audio_tick()
    assert released == [] and d._next_wait() is None
    d.stop_recording()
    d._mic.source.open()  # the first tap of the next hotkey sequence opened it again (pre-roll)
    clock.now += 10 * AUDIO_RELEASE_S
    d._audio_tick()
    assert released == []
    d.supervisor.close()


class FakeStream:
    """sounddevice.InputStream's shape: keeps the callback so the test can play PortAudio."""

    made: list[FakeStream] = []

    def __init__(self, *, callback, **_kw) -> None:
        self.callback = callback
        FakeStream.made.append(self)

    def start(self) -> None:
        pass

    def abort(self) -> None:
        pass

    def close(self) -> None:
        pass


def test_input_overflows_are_counted_from_begin(monkeypatch):
    FakeStream.made = []
    device = recorder.InputDevice(0, "fake mic", 1, 16000.0, "ALSA", True)
    monkeypatch.setattr(recorder, "resolve_device", lambda spec: device)
    monkeypatch.setattr(sd, "InputStream", FakeStream)
    rec = recorder.Recorder(None, on_audio=lambda a: None, on_stall=lambda m: None)
    rec.open()
    block, ok, over = np.zeros((320, 1), np.float32), sd.CallbackFlags(), sd.CallbackFlags()
    over.input_overflow = True
    callback = FakeStream.made[0].callback
    callback(block, 320, None, over)  # before the tap: the pre-roll, not this recording
    rec.begin()
    for flags in (ok, over, ok, over):
        callback(block, 320, None, flags)
    assert rec.overflows == 2
    rec.close()


def test_the_daemon_says_when_audio_was_lost_to_overflows(monkeypatch, caplog, workers):
    clock = FakeClock()
    d, _ = make_daemon(0.0, clock)
    d._mic.source = CountingRecorder()
    d._mic.source.overflows = 3
    pump(d, lambda: d.snapshot()["state"] == "ready")
    with caplog.at_level("WARNING", logger="ctrlspeak.daemon.core"):
        dictate(d, clock)
    assert "too busy to read the microphone 3 time(s)" in caplog.text
    d.supervisor.close()
