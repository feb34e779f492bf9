"""The file audio source: the microphone's interface, real-time pacing, fixed blocks."""
from __future__ import annotations

import threading

import numpy as np
import pytest
import soundfile as sf

from ctrlspeak.audio.capture import FileSource

SR = 16000
BLOCK = 320  # 20 ms


class FakeTime:
    """A clock that only moves when the source sleeps."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


class Collect:
    """on_audio that records each block with the time it came, and stops the source after
    ``stop_after`` blocks (from the playing thread: end() must allow that)."""

    def __init__(self, clock=None, stop_after: int | None = None) -> None:
        self.blocks: list[np.ndarray] = []
        self.times: list[float] = []
        self.finished_seen: list[bool] = []
        self.stalls: list[str] = []
        self.source: FileSource | None = None
        self._clock = clock
        self._stop_after = stop_after
        self.done = threading.Event()

    def on_audio(self, block: np.ndarray) -> None:
        assert self.source is not None
        self.blocks.append(block)
        self.times.append(self._clock() if self._clock else 0.0)
        self.finished_seen.append(self.source.finished.is_set())
        if self._stop_after is not None and len(self.blocks) >= self._stop_after:
            self.source.end()
            self.done.set()


def _source(collect: Collect, clip, **kwargs) -> FileSource:
    source = FileSource(collect.on_audio, collect.stalls.append, clip, **kwargs)
    collect.source = source
    return source


def _ramp(n: int) -> np.ndarray:
    return np.linspace(-0.5, 0.5, n, dtype=np.float32)


def test_blocks_are_paced_in_real_time_from_the_start():
    fake = FakeTime()
    collect = Collect(fake.clock, stop_after=12)
    source = _source(collect, _ramp(5 * BLOCK), clock=fake.clock, sleep=fake.sleep)
    source.begin()
    assert collect.done.wait(10)
    source.close()
    # block k arrives once its audio has been "spoken": start + (k + 1) * 20 ms, with no drift
    assert collect.times == pytest.approx([100.0 + 0.02 * (k + 1) for k in range(12)])
    assert sum(fake.slept) == pytest.approx(0.02 * 12)


def test_fixed_blocks_carry_the_clip_in_order_then_silence():
    clip = _ramp(5 * BLOCK + 37)  # a partial last block
    fake = FakeTime()
    collect = Collect(fake.clock, stop_after=9)
    source = _source(collect, clip, clock=fake.clock, sleep=fake.sleep)
    assert source.duration_s == pytest.approx(clip.size / SR)
    source.begin()
    assert collect.done.wait(10)
    source.close()
    assert all(b.dtype == np.float32 and b.shape == (BLOCK,) for b in collect.blocks)
    played = np.concatenate(collect.blocks)
    np.testing.assert_array_equal(played[:clip.size], clip)
    assert not played[clip.size:].any(), "after the clip comes silence, as from a microphone"
    # finished is set once the clip's last (6th) block is out, not before
    assert collect.finished_seen == [False] * 6 + [True] * 3
    assert source.finished.is_set()
    assert collect.stalls == []


def test_begin_returns_an_empty_preroll_and_restarts_the_clip():
    fake = FakeTime()
    collect = Collect(fake.clock, stop_after=3)
    source = _source(collect, _ramp(2 * BLOCK), clock=fake.clock, sleep=fake.sleep)
    source.open()  # nothing to open; must not start delivering
    assert collect.blocks == [] and not source.recording
    pre = source.begin()
    assert pre.dtype == np.float32 and pre.size == 0
    assert collect.done.wait(10)
    first = list(collect.blocks)
    collect.blocks.clear()
    collect.finished_seen.clear()
    collect.done.clear()
    source.begin()
    assert collect.done.wait(10)
    source.close()
    np.testing.assert_array_equal(np.concatenate(collect.blocks), np.concatenate(first))
    assert collect.finished_seen[0] is False, "begin() clears finished"


def test_nothing_is_delivered_after_end_returns():
    collect = Collect()
    source = _source(collect, _ramp(SR), block_s=0.005)
    source.begin()
    assert source.recording and source.is_open
    while len(collect.blocks) < 3:
        threading.Event().wait(0.005)
    source.end()
    count = len(collect.blocks)
    assert not source.recording
    threading.Event().wait(0.05)  # ten more blocks' worth of time
    assert len(collect.blocks) == count
    source.close()
    assert not source.is_open


def test_close_wakes_the_pacing_wait_at_once():
    # blocks of 10 s: close() must not sit out the wait for the first one
    collect = Collect()
    source = _source(collect, _ramp(SR), block_s=10.0)
    source.begin()
    source.close()
    assert not source.is_open
    assert collect.blocks == []


def test_an_empty_clip_is_finished_at_once_and_plays_silence():
    fake = FakeTime()
    collect = Collect(fake.clock, stop_after=2)
    source = _source(collect, np.zeros(0, np.float32), clock=fake.clock, sleep=fake.sleep)
    source.begin()
    assert collect.done.wait(10)
    source.close()
    assert collect.finished_seen == [True, True]
    assert not np.concatenate(collect.blocks).any()


def test_clips_are_brought_to_16k_mono(tmp_path):
    seconds = 0.5
    t = np.arange(int(44100 * seconds)) / 44100
    stereo = np.stack([0.3 * np.sin(2 * np.pi * 440 * t), np.zeros_like(t)], axis=1)
    path = tmp_path / "a.wav"
    sf.write(path, stereo, 44100, subtype="PCM_16")
    collect = Collect()
    source = _source(collect, path)
    assert source.duration_s == pytest.approx(seconds, abs=0.01)
    source.load(np.zeros(8000 * 2, np.float32), rate=8000)
    assert source.duration_s == pytest.approx(2.0, abs=0.01)
