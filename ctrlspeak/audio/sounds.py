"""Short start and stop sounds: a rising and a falling two-tone blip, made on the fly."""
from __future__ import annotations

import logging

import numpy as np

log = logging.getLogger(__name__)

RATE = 44100


def blip(rising: bool, seconds: float = 0.09, volume: float = 0.2) -> np.ndarray:
    n = int(RATE * seconds)
    t = np.arange(n) / RATE
    lo, hi = 660.0, 990.0
    f = np.where(t < seconds / 2, lo if rising else hi, hi if rising else lo)
    envelope = np.minimum(1.0, np.minimum(t, seconds - t) / 0.01)  # 10 ms fades: no clicks
    return (volume * envelope * np.sin(2 * np.pi * f * t)).astype(np.float32)


def play(which: str) -> None:
    """Play without waiting; a machine without an output device simply stays quiet."""
    try:
        from ctrlspeak.audio.capture import portaudio

        portaudio().play(blip(which == "start"), RATE, blocking=False)
    except Exception as exc:
        log.debug("no %s sound: %s", which, exc)
