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


from hypothesis import given, settings, strategies as st

FRAME = 480


def _energy_vad(frame):
    return float(np.abs(frame).max()) > 0.05


def _dictation(pattern, rng):
    """Speech/pause blocks in seconds: [(speech_s, pause_s), ...]."""
    parts = []
    for speech_s, pause_s in pattern:
        parts.append((0.3 * rng.standard_normal(int(speech_s * SR))).astype(np.float32))
        parts.append(np.zeros(int(pause_s * SR), np.float32))
    return np.concatenate(parts)


def _feed_in_blocks(seg, audio, sizes):
    out, i, k = [], 0, 0
    while i < audio.size:
        n = sizes[k % len(sizes)]
        out += seg.feed(audio[i:i + n])
        i += n
        k += 1
    rest = seg.flush()
    return out + ([rest] if rest is not None else [])


def test_segments_are_cut_in_pauses():
    rng = np.random.default_rng(3)
    audio = _dictation([(2.5, 0.8), (3.0, 0.3), (1.0, 0.9), (2.2, 1.0)], rng)
    seg = segment.Segmenter(_energy_vad, min_silence_s=0.5, min_segment_s=2.0, max_segment_s=20)
    pieces = _feed_in_blocks(seg, audio, [320])
    assert np.array_equal(np.concatenate(pieces), audio)
    # cuts after the 0.8 s, 0.9 s and 1.0 s pauses; the 0.3 s pause is too short to cut at
    assert len(pieces) == 4
    assert np.abs(pieces[-1]).max() == 0.0
    for p in pieces[:-1]:
        assert np.abs(p[-FRAME:]).max() == 0.0, "each cut lands in silence"


def test_max_length_cut_without_pauses():
    rng = np.random.default_rng(4)
    audio = (0.3 * rng.standard_normal(45 * SR)).astype(np.float32)
    seg = segment.Segmenter(_energy_vad, max_segment_s=10)
    pieces = _feed_in_blocks(seg, audio, [1600])
    assert all(p.size <= 10 * SR for p in pieces)
    assert np.array_equal(np.concatenate(pieces), audio)


@settings(max_examples=60, deadline=None)
@given(
    pattern=st.lists(st.tuples(st.floats(0.05, 4.0), st.floats(0.0, 1.5)), min_size=1, max_size=8),
    sizes=st.lists(st.integers(1, 5000), min_size=1, max_size=5),
    min_silence=st.floats(0.1, 1.0),
    max_segment=st.floats(3.0, 12.0),
)
def test_nothing_dropped_or_doubled(pattern, sizes, min_silence, max_segment):
    audio = _dictation(pattern, np.random.default_rng(0))
    seg = segment.Segmenter(_energy_vad, min_silence_s=min_silence, min_segment_s=1.0, max_segment_s=max_segment)
    pieces = _feed_in_blocks(seg, audio, sizes)
    joined = np.concatenate(pieces) if pieces else np.zeros(0, np.float32)
    assert np.array_equal(joined, audio)
    assert all(p.size <= int(max_segment * SR) + FRAME for p in pieces)


def test_webrtc_vad_tells_speech_from_silence():
    from ctrlspeak.vad import FRAME as VFRAME, WebRtcVad

    vad = WebRtcVad(2)
    t = np.arange(VFRAME) / SR
    voiced = (0.3 * np.sign(np.sin(2 * np.pi * 150 * t)) * np.sin(2 * np.pi * 3 * t)).astype(np.float32)
    assert vad(np.zeros(VFRAME, np.float32)) is False
    assert isinstance(vad(voiced), bool)
