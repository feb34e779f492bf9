"""espeak-ng speech: voices, rates and pitches of tiny-en's data, synthesis in a process pool."""
from __future__ import annotations

import io
import multiprocessing
import random
import subprocess

import numpy as np

SR = 16000
VOICES = ("en-us", "en-gb", "en-gb-x-rp", "en-gb-scotland", "en-029")
RATE_RANGE = (140, 190)
PITCH_RANGE = (30, 70)


def random_voice(rng: random.Random) -> dict:
    return {"voice": rng.choice(VOICES), "rate": rng.randint(*RATE_RANGE),
            "pitch": rng.randint(*PITCH_RANGE)}


def make_item(rng: random.Random, texts: list[str], gaps=None) -> dict:
    """One utterance to speak: its sentences, the silences between them, one voice."""
    item = random_voice(rng)
    item["texts"] = texts
    item["gaps"] = list(gaps or [])
    item["text"] = " ".join(texts)
    return item


def synth(text: str, voice: str = "en-us", rate: int = 160, pitch: int = 50) -> np.ndarray:
    """Speak ``text`` with espeak-ng; return 16 kHz mono float32 in [-1, 1]."""
    import soundfile as sf
    import soxr

    wav = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(rate), "-p", str(pitch), "--stdout", text],
        check=True, capture_output=True).stdout
    audio, sr = sf.read(io.BytesIO(wav), dtype="float32", always_2d=True)
    audio = audio.mean(axis=1)
    if sr != SR:
        audio = soxr.resample(audio, sr, SR, quality="HQ").astype(np.float32)
    return np.clip(audio, -1.0, 1.0)


def synth_item(item: dict) -> np.ndarray:
    """One item = one or more sentences (same voice) joined by silences; int16 16 kHz."""
    parts = []
    for i, text in enumerate(item["texts"]):
        if i:
            parts.append(np.zeros(int(item["gaps"][i - 1] * SR), dtype=np.float32))
        parts.append(synth(text, item["voice"], item["rate"], item["pitch"]))
    audio = np.concatenate(parts)
    return (audio * 32767.0).round().astype(np.int16)


def synthesize(items: list[dict], procs: int = 2) -> list[np.ndarray]:
    """Synthesize items (in order) with a pool of ``procs`` processes; int16 16 kHz arrays."""
    if procs <= 1:
        return [synth_item(it) for it in items]
    with multiprocessing.get_context("fork").Pool(procs) as pool:
        return pool.map(synth_item, items, chunksize=16)
