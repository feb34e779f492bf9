from __future__ import annotations

import numpy as np

from ctrlspeak import segment

SR = 16000


def _speechy(seconds: float, rng) -> np.ndarray:
    return (0.3 * rng.standard_normal(int(seconds * SR))).astype(np.float32)


def test_short_audio_is_not_split():
    assert segment.split_points(np.zeros(10 * SR, np.float32)) == []


def test_cuts_fall_in_pauses_and_lose_no_samples():
    rng = np.random.default_rng(1)
    parts, pauses = [], []
    pos = 0
    for i in range(9):  # 9 x (6 s speech + 0.6 s pause) = 59.4 s
        parts.append(_speechy(6.0, rng))
        pos += 6 * SR
        pauses.append((pos, pos + int(0.6 * SR)))
        parts.append(np.zeros(int(0.6 * SR), np.float32))
        pos += int(0.6 * SR)
    audio = np.concatenate(parts)
    cuts = segment.split_points(audio, max_s=20.0)
    assert cuts, "a 59 s input must be cut"
    for cut in cuts:
        assert any(a <= cut < b for a, b in pauses), f"cut at {cut / SR:.2f} s is inside speech"
    pieces = segment.split(audio, max_s=20.0)
    assert all(p.size <= 20 * SR for p in pieces)
    assert np.array_equal(np.concatenate(pieces), audio)


def test_join_texts():
    assert segment.join_texts([" hello there", "", "  ", "general kenobi "]) == "hello there general kenobi"
