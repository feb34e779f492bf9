"""Cutting audio into segments at pauses (one rule for every path), and joining their text.

Pure functions and classes over numpy arrays: tests feed them synthetic signals.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ctrlspeak.ipc import SAMPLE_RATE

FRAME = SAMPLE_RATE // 50  # 20 ms


def frame_energy(audio: np.ndarray) -> np.ndarray:
    """RMS of consecutive 20 ms frames (a partial last frame is dropped)."""
    n = audio.size // FRAME
    if n == 0:
        return np.zeros(0, dtype=np.float32)
    frames = audio[: n * FRAME].reshape(n, FRAME)
    return np.sqrt(np.mean(frames * frames, axis=1))


@dataclass(frozen=True)
class SegmentRule:
    """The one rule for cutting audio, used by the daemon, ``transcribe`` and journal recovery.

    A cut falls in the middle of a VAD pause of at least ``min_silence_s`` once a segment
    holds ``min_segment_s``; a segment that reaches ``max_segment_s`` without such a pause
    is cut at its quietest frame (see :class:`Segmenter`).
    """

    min_silence_s: float = 0.5
    min_segment_s: float = 2.0
    max_segment_s: float = 20.0

    def segmenter(self, is_speech: Callable[[np.ndarray], bool]) -> Segmenter:
        return Segmenter(is_speech, min_silence_s=self.min_silence_s, min_segment_s=self.min_segment_s,
                         max_segment_s=self.max_segment_s)


#: a whole file at once (``transcribe``, a recording recovered from the journal): nobody waits
#: for the first piece, so pieces are longer (fewer, longer pieces transcribe faster)
FILE_RULE = SegmentRule(min_silence_s=0.3, min_segment_s=15.0, max_segment_s=30.0)


def live_rule(min_silence_s: float, max_segment_s: float) -> SegmentRule:
    """The rule for a live dictation: short segments, so each is transcribed while the person speaks."""
    return SegmentRule(min_silence_s=min_silence_s, max_segment_s=max_segment_s)


def cut(audio: np.ndarray, is_speech: Callable[[np.ndarray], bool], rule: SegmentRule = FILE_RULE) -> list[np.ndarray]:
    """``audio`` (all of it at hand) cut by ``rule``: the pieces a live feed of it would give."""
    segmenter = rule.segmenter(is_speech)
    pieces = segmenter.feed(audio)
    rest = segmenter.flush()
    return [*pieces, rest] if rest is not None else pieces


#: a final segment quieter than this (about -50 dBFS) holds no speech: don't transcribe it
SILENT_PEAK = 0.003


def keep_rest(rest: np.ndarray | None, pieces_before: int) -> bool:
    """Whether a recording's last piece (its segmenter's flush) goes to the worker: unless it is
    only the quiet after the last pause; a recording with no piece before it always does."""
    return rest is not None and (pieces_before == 0 or float(np.abs(rest).max()) > SILENT_PEAK)


#: what :func:`settle_edges` leaves around a piece's sound: enough before it for a soft onset
#: (an "f", an "h") under the loudness threshold, and after it for the model's last frames
LEAD_S, TAIL_S = 0.2, 0.3
#: a sample this far below the piece's peak (-40 dB) is quiet, for finding where its sound is
EDGE_FLOOR = 0.01


def settle_edges(piece: np.ndarray, lead_s: float = LEAD_S, tail_s: float = TAIL_S) -> np.ndarray:
    """``piece`` with exactly ``lead_s`` before its first sound and ``tail_s`` after its last
    (quiet trimmed, zeros added where it has less).

    Where a cut falls in a pause depends on the 30 ms frames the VAD saw, so on when the
    capture began: the same words came to the model with 0-30 ms more or less quiet before
    them, and a small model's text changed with it (tiny-en, 6 held-out dictations cut by the
    live rule, three random starts: 7.42 / 7.83 / 7.55 % WER; settled, 7.42 % and the same
    text on all three). Settled, a piece's
    sound sits at the same place whatever the capture's timing, in the daemon and in
    ``transcribe`` alike. The quiet dropped is only quiet (below :data:`EDGE_FLOOR` of the
    peak); a piece with no sound is returned as it is."""
    peak = float(np.abs(piece).max()) if piece.size else 0.0
    if peak <= SILENT_PEAK:
        return piece
    loud = np.flatnonzero(np.abs(piece) > EDGE_FLOOR * peak)
    first, last = int(loud[0]), int(loud[-1]) + 1
    lead, tail = round(lead_s * SAMPLE_RATE), round(tail_s * SAMPLE_RATE)
    body = piece[max(0, first - lead):last + tail]
    before, after = max(0, lead - first), max(0, last + tail - piece.size)
    if not before and not after:
        return body
    return np.concatenate([np.zeros(before, piece.dtype), body, np.zeros(after, piece.dtype)])


def join_texts(texts: list[str]) -> str:
    """Join per-piece transcripts: pieces end at pauses, so a single space is right."""
    return " ".join(t.strip() for t in texts if t and t.strip())


class Segmenter:
    """Cuts a live recording into segments at pauses, so each can be transcribed while
    the person is still speaking.

    Pure: ``is_speech`` classifies one 30 ms frame; audio goes in through :meth:`feed`
    and completed segments come out. Every input sample ends up in exactly one output
    segment, in order (nothing dropped, nothing doubled); a cut is placed in the middle
    of a pause of at least ``min_silence_s``, once the segment holds ``min_segment_s``.
    A segment that reaches ``max_segment_s`` without a pause is cut at its quietest frame.
    """

    def __init__(self, is_speech: Callable[[np.ndarray], bool], *, min_silence_s: float = 0.5, min_segment_s: float = 2.0,
                 max_segment_s: float = 20.0, frame: int = SAMPLE_RATE * 30 // 1000) -> None:
        self._is_speech = is_speech
        self._frame = frame
        self._min_silence = max(1, round(min_silence_s * SAMPLE_RATE / frame))
        self._min_segment = round(min_segment_s * SAMPLE_RATE / frame)
        self._max_segment = max(self._min_segment + 1, round(max_segment_s * SAMPLE_RATE / frame))
        self._frames: list[np.ndarray] = []  # classified frames of the current segment
        self._speech: list[bool] = []
        self._tail = np.zeros(0, dtype=np.float32)  # < one frame, not yet classified
        self._silent_run = 0

    @property
    def buffered_s(self) -> float:
        return (len(self._frames) * self._frame + self._tail.size) / SAMPLE_RATE

    def feed(self, audio: np.ndarray) -> list[np.ndarray]:
        data = np.concatenate([self._tail, audio.astype(np.float32, copy=False)]) if self._tail.size else audio
        n = data.size // self._frame
        out: list[np.ndarray] = []
        for i in range(n):
            frame = np.asarray(data[i * self._frame:(i + 1) * self._frame], dtype=np.float32)
            speech = bool(self._is_speech(frame))
            self._frames.append(frame)
            self._speech.append(speech)
            self._silent_run = 0 if speech else self._silent_run + 1
            cut = self._cut_point()
            if cut is not None:
                out.append(self._emit(cut))
        self._tail = np.array(data[n * self._frame:], dtype=np.float32)
        return out

    def _cut_point(self) -> int | None:
        count = len(self._frames)
        if count >= self._min_segment and self._silent_run >= self._min_silence and any(self._speech):
            return count - self._silent_run // 2  # the middle of the pause
        if count >= self._max_segment:
            energies = np.array([float(np.mean(f * f)) for f in self._frames])
            start = count // 2  # search the second half only, so segments stay long
            quiet = np.where(~np.array(self._speech[start:]))[0]
            if quiet.size:  # prefer frames the VAD calls non-speech, quietest first
                return start + int(quiet[np.argmin(energies[start:][quiet])]) + 1
            return start + int(np.argmin(energies[start:])) + 1
        return None

    def _emit(self, cut: int) -> np.ndarray:
        segment = np.concatenate(self._frames[:cut])
        self._frames = self._frames[cut:]
        self._speech = self._speech[cut:]
        run = 0
        for s in reversed(self._speech):
            if s:
                break
            run += 1
        self._silent_run = run
        return segment

    def pending(self) -> np.ndarray:
        """A copy of the audio not yet emitted (the open segment), leaving it in place."""
        return np.concatenate([*self._frames, self._tail]) if self._frames else self._tail.copy()

    def flush(self) -> np.ndarray | None:
        """Everything not yet emitted (the last segment), or None if nothing is left."""
        parts = [*self._frames, self._tail]
        self._frames, self._speech, self._tail, self._silent_run = [], [], np.zeros(0, np.float32), 0
        rest = np.concatenate(parts) if parts else np.zeros(0, np.float32)
        return rest if rest.size else None
