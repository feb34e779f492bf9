from __future__ import annotations

import numpy as np

from hypothesis import given, settings, strategies as st

from ctrlspeak.audio import segment

SR = 16000
FRAME = 480


def _speechy(seconds: float, rng) -> np.ndarray:
    return (0.3 * rng.standard_normal(int(seconds * SR))).astype(np.float32)


def test_short_audio_is_not_cut():
    audio = _speechy(10.0, np.random.default_rng(0))
    pieces = segment.cut(audio, _energy_vad, segment.FILE_RULE)
    assert len(pieces) == 1 and np.array_equal(pieces[0], audio)


def test_file_rule_cuts_fall_in_pauses_and_lose_no_samples():
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
    pieces = segment.cut(audio, _energy_vad, segment.FILE_RULE)
    assert len(pieces) > 1, "a 59 s input must be cut"
    ends = np.cumsum([p.size for p in pieces])[:-1]
    for end in ends:
        assert any(a <= end < b for a, b in pauses), f"cut at {end / SR:.2f} s is inside speech"
    assert all(p.size <= segment.FILE_RULE.max_segment_s * SR for p in pieces)
    assert all(p.size >= segment.FILE_RULE.min_segment_s * SR for p in pieces[:-1])
    assert np.array_equal(np.concatenate(pieces), audio)


def test_cut_gives_what_a_live_feed_gives():
    """One rule: cutting audio at hand (recovery) and feeding it live (the daemon) agree."""
    rng = np.random.default_rng(2)
    audio = _dictation([(2.5, 0.8), (3.0, 0.3), (1.0, 0.9), (2.2, 1.0)], rng)
    rule = segment.live_rule(min_silence_s=0.5, max_segment_s=20.0)
    live = _feed_in_blocks(rule.segmenter(_energy_vad), audio, [320])
    at_once = segment.cut(audio, _energy_vad, rule)
    assert [p.size for p in at_once] == [p.size for p in live]


def test_join_texts():
    assert segment.join_texts([" hello there", "", "  ", "general kenobi "]) == "hello there general kenobi"




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


def _vowel(seconds: float, f0: float = 120.0) -> np.ndarray:
    """A synthetic sustained /a/: harmonics of ``f0`` shaped by its formants (700, 1220, 2600 Hz)."""
    t = np.arange(int(seconds * SR)) / SR
    signal = np.zeros(t.size)
    for k in range(1, int(4000 / f0)):
        f = k * f0
        gain = sum(np.exp(-(((f - formant) / width) ** 2)) for formant, width in ((700, 130), (1220, 150), (2600, 250)))
        signal += (gain + 0.05) / k ** 0.5 * np.sin(2 * np.pi * f * t)
    return (0.3 * signal / np.abs(signal).max()).astype(np.float32)


def test_webrtc_vad_tells_speech_from_silence():
    from ctrlspeak.audio.vad import FRAME as VFRAME, WebRtcVad

    def frames(audio):
        return [audio[i:i + VFRAME] for i in range(0, audio.size - VFRAME + 1, VFRAME)]

    vad = WebRtcVad(2)
    assert not any(vad(f) for f in frames(np.zeros(SR, np.float32)))
    vowel = [vad(f) for f in frames(_vowel(1.0))]
    assert all(vowel), f"{vowel.count(False)} of {len(vowel)} voiced frames called silence"


def test_pending_is_the_open_segment_and_leaves_it_in_place():
    seg = segment.Segmenter(lambda f: True, min_silence_s=0.5)
    audio = np.arange(16000 + 100, dtype=np.float32) / 1e5  # a part frame left over too
    assert seg.feed(audio) == []
    open_now = seg.pending()
    np.testing.assert_array_equal(open_now, audio)
    open_now[:] = 0  # a copy: the caller may keep it
    np.testing.assert_array_equal(seg.flush(), audio)
    assert seg.pending().size == 0


@st.composite
def _sounds(draw):
    """A piece: quiet, a sound of random samples, quiet (each side 0-1 s)."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    before, n, after = draw(st.integers(0, 16000)), draw(st.integers(1, 8000)), draw(st.integers(0, 16000))
    sound = rng.uniform(-0.5, 0.5, n).astype(np.float32)
    sound[0], sound[-1] = 0.4, -0.4  # its first and last samples are loud
    return np.concatenate([np.zeros(before, np.float32), sound, np.zeros(after, np.float32)]), before, n


@given(_sounds(), st.integers(0, 5000))
@settings(max_examples=200, deadline=None)
def test_settled_edges_keep_the_sound_whole_and_do_not_depend_on_when_the_capture_began(piece, shift):
    audio, before, n = piece
    out = segment.settle_edges(audio)
    lead, tail = round(segment.LEAD_S * 16000), round(segment.TAIL_S * 16000)
    assert out.size == lead + n + tail
    assert np.array_equal(out[lead:lead + n], audio[before:before + n]), "the sound itself, sample for sample"
    assert not out[:lead].any() and not out[lead + n:].any()
    assert np.array_equal(segment.settle_edges(out), out), "settling twice changes nothing"
    later = np.concatenate([np.zeros(shift, np.float32), audio])
    assert np.array_equal(segment.settle_edges(later), out), "the same piece, whenever it began"


def test_a_piece_without_sound_is_left_as_it_is():
    quiet = np.full(8000, 0.001, np.float32)
    assert segment.settle_edges(quiet) is quiet
    assert segment.settle_edges(np.zeros(0, np.float32)).size == 0
