"""Voice activity detection on the daemon side, without torch.

WebRTC's VAD (a small C extension) classifies 30 ms frames of 16 kHz audio. It only
chooses where to cut a recording into segments; it never throws audio away.
"""
from __future__ import annotations

import numpy as np

from ctrlspeak.ipc import SAMPLE_RATE

FRAME = SAMPLE_RATE * 30 // 1000  # 480 samples: one of the frame sizes WebRTC accepts


class WebRtcVad:
    def __init__(self, aggressiveness: int = 2) -> None:
        import webrtcvad

        self._vad = webrtcvad.Vad(aggressiveness)

    def __call__(self, frame: np.ndarray) -> bool:
        pcm = (np.clip(frame, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
        return self._vad.is_speech(pcm, SAMPLE_RATE)


class EnergyVad:
    """A fallback: speech is anything 15 dB above a slowly tracked noise floor."""

    def __init__(self, margin_db: float = 15.0, floor_db: float = -60.0) -> None:
        self._margin = margin_db
        self._noise_db = floor_db
        self._floor_db = floor_db

    def __call__(self, frame: np.ndarray) -> bool:
        rms = float(np.sqrt(np.mean(frame * frame))) + 1e-12
        level = 20.0 * np.log10(rms)
        speech = level > max(self._noise_db, self._floor_db) + self._margin
        if not speech:  # track the floor on non-speech only
            self._noise_db = 0.95 * self._noise_db + 0.05 * level
        return speech


def make_vad(aggressiveness: int = 2):
    try:
        return WebRtcVad(aggressiveness)
    except ImportError:  # pragma: no cover - webrtcvad is a declared dependency
        return EnergyVad()
