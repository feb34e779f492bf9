"""Splitting long audio at quiet points, and joining the pieces' text.

Pure functions over numpy arrays: tests feed them synthetic signals.
"""
from __future__ import annotations

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


def split_points(audio: np.ndarray, max_s: float = 30.0, search_s: float = 8.0) -> list[int]:
    """Sample offsets at which to cut ``audio`` so no piece exceeds ``max_s``.

    Each cut is placed at the quietest 20 ms frame in the last ``search_s`` seconds before
    the limit, so a cut falls into a pause between words rather than through one.
    """
    limit = int(max_s * SAMPLE_RATE)
    if audio.size <= limit:
        return []
    energy = frame_energy(audio)
    cuts: list[int] = []
    start = 0
    while audio.size - start > limit:
        lo = (start + limit - int(search_s * SAMPLE_RATE)) // FRAME
        hi = (start + limit) // FRAME
        window = energy[lo:hi]
        # smooth over 5 frames so one quiet frame inside a word does not win
        smoothed = np.convolve(window, np.ones(5) / 5, mode="same") if window.size >= 5 else window
        cut = (lo + int(np.argmin(smoothed))) * FRAME + FRAME // 2
        cuts.append(cut)
        start = cut
    return cuts


def split(audio: np.ndarray, max_s: float = 30.0) -> list[np.ndarray]:
    bounds = [0, *split_points(audio, max_s), audio.size]
    return [audio[a:b] for a, b in zip(bounds, bounds[1:]) if b > a]


def join_texts(texts: list[str]) -> str:
    """Join per-piece transcripts: pieces end at pauses, so a single space is right."""
    return " ".join(t.strip() for t in texts if t and t.strip())
