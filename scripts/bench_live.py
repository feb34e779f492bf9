#!/usr/bin/env python3
"""Live text, measured: partial latency, what live mode costs, and the streaming step per chunk.

Not a timed test: run it by hand, on an otherwise idle machine. Three parts:

1. **Partial latency** at real-time pacing, through the live path the daemon and
   ``transcribe --stream`` share (ctrlspeak.commands.stream): a dictation of held-out espeak-ng
   sentences with pauses, fed at the audio's pace to a real spawned worker. For each word, the
   time from its end in the audio to the first partial event that shows that many words. Run
   twice, interleaved with itself: live on (the open segment decoded every live_interval_s)
   and live off (a segment's text once a pause ends it), so the ratio is what live buys.
2. **What live costs**: the worker's CPU seconds per second of speech, live on against off.
3. **The streaming step** (``--chunks``): the bundled model through the live streaming path
   (models/streaming.py: an exact incremental mel, then NeMo's cache-aware
   ``conformer_stream_step``), a chunk's audio at a time, compute over chunk duration at each
   chunk size, float32 and with a dynamic int8 encoder, 2 threads.

Word ends come from espeak-ng itself: each sentence's prefixes are spoken alone and their
length (trailing quiet trimmed) is where that word ends.

Usage: python scripts/bench_live.py [--sentences 6] [--passes 2] [--chunks]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))

SR = 16000
PAUSE_S = 0.8


def _trimmed_len(audio: np.ndarray) -> int:
    loud = np.nonzero(np.abs(audio.astype(np.float32)) > 0.01 * float(np.abs(audio).max() or 1))[0]
    return int(loud[-1]) + 1 if loud.size else 0


def _dictation(sentences: list[str]) -> tuple[np.ndarray, list[float]]:
    """The audio and each word's end (seconds from the start)."""
    from tinyen import speech

    parts, ends, at = [], [], 0
    for text in sentences:
        words = text.split()
        audio = speech.synth(text, voice="en-us", rate=160, pitch=50).astype(np.float32)
        for k in range(1, len(words)):
            ends.append((at + _trimmed_len(speech.synth(" ".join(words[:k]), voice="en-us", rate=160,
                                                       pitch=50))) / SR)
        ends.append((at + _trimmed_len(audio)) / SR)
        parts += [audio, np.zeros(int(PAUSE_S * SR), np.float32)]
        at += audio.size + int(PAUSE_S * SR)
    return np.concatenate(parts), ends


class Recorder:
    """A Printer that keeps each partial's arrival time instead of printing it."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()
        self.seen: list[tuple[float, int]] = []  # (seconds since t0, words shown)

    def partial(self, _name: str, p) -> None:
        if p is not None:
            self.seen.append((time.monotonic() - self.t0, len(f"{p.final} {p.tentative}".split())))

    def final(self, _result: dict) -> None:
        pass


def _latencies(seen: list[tuple[float, int]], ends: list[float]) -> list[float]:
    out = []
    for k, end in enumerate(ends):
        first = next((t for t, n in seen if n > k), None)
        if first is not None:
            out.append(first - end)
    return out


def _run(client, path: Path, cfg, decode_open: bool) -> tuple[list[tuple[float, int]], float, str]:
    import psutil

    from ctrlspeak.audio.files import FileStream
    from ctrlspeak.commands.stream import stream_file
    from ctrlspeak.ipc import TranscribeOptions

    options = TranscribeOptions(cfg.language, cfg.target_language, cfg.punctuation)
    worker = psutil.Process(client.pid)
    cpu0 = sum(worker.cpu_times()[:2])
    stream = FileStream(path)
    rec = Recorder()
    try:
        result = stream_file(lambda a: client.submit(a, options), lambda f: f.result(timeout=120), str(path),
                             stream, cfg, rec, realtime=True, decode_open=decode_open)
    finally:
        stream.close()
    return rec.seen, sum(worker.cpu_times()[:2]) - cpu0, result["text"]


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def partial_latency(n_sentences: int, passes: int, interval_s: float) -> None:
    import soundfile as sf

    from ctrlspeak import config
    from ctrlspeak.models import registry
    from ctrlspeak.supervision.client import WorkerClient, settings_from_config
    from tinyen import datasets

    sentences = [it["text"] for it in datasets.build_datasets(0, 40, 0, 0).heldout_natural
                 if 5 <= len(it["text"].split()) <= 10][:n_sentences]
    audio, ends = _dictation(sentences)
    cfg = config.Config(model="tiny-en", threads=2, live_interval_s=interval_s)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "dictation.wav"
        sf.write(path, audio, SR, subtype="PCM_16")
        client = WorkerClient(settings_from_config(cfg, registry.resolve("tiny-en")))
        client.start()
        try:
            client.ready.result(timeout=300)
            rows = {True: ([], 0.0), False: ([], 0.0)}
            texts = {}
            for _ in range(passes):
                for live in (True, False):  # interleaved: drift on the machine hits both alike
                    seen, cpu, texts[live] = _run(client, path, cfg, live)
                    lat, total = rows[live]
                    rows[live] = (lat + _latencies(seen, ends), total + cpu)
        finally:
            client.close()
    speech_s = audio.size / SR * passes
    print(f"partial latency, tiny-en, {len(sentences)} held-out sentences ({audio.size / SR:.1f} s, "
          f"{len(ends)} words), real-time pacing, live_interval_s {interval_s:g}, {passes} pass(es) each, "
          "interleaved:")
    for live in (True, False):
        lat, cpu = rows[live]
        print(f"  live {'on ' if live else 'off'}: word end -> first partial p50 {_pct(lat, 50):.2f} s, "
              f"p95 {_pct(lat, 95):.2f} s ({len(lat)} words); worker CPU {cpu / speech_s:.3f} s per s of speech")
    on, off = rows[True], rows[False]
    print(f"  ratio on/off: latency p50 {_pct(on[0], 50) / _pct(off[0], 50):.2f}, "
          f"worker CPU {on[1] / max(off[1], 1e-9):.2f}; live costs {(on[1] - off[1]) / speech_s:.3f} CPU s "
          f"per s of speech; target p50 <= 0.4 s")
    print(f"  final text the same with live on and off: {texts[True] == texts[False]}")


def chunk_compute() -> None:
    """The live streaming path (models/streaming.py: exact incremental mel, then NeMo's
    conformer_stream_step) fed a chunk's audio at a time: compute per chunk / its duration."""
    import os

    import torch
    from nemo.collections.asr.models import ASRModel

    from ctrlspeak.models import registry
    from ctrlspeak.models.streaming import LiveStream
    from tinyen import datasets, speech
    from tinyen.model import CHUNK_MS

    torch.set_num_threads(2)
    cwd = os.getcwd()
    try:
        base = ASRModel.restore_from(registry.resolve("tiny-en").path, map_location="cpu").eval()
        int8 = ASRModel.restore_from(registry.resolve("tiny-en").path, map_location="cpu").eval()
    finally:
        os.chdir(cwd)
    int8.encoder = torch.ao.quantization.quantize_dynamic(int8.encoder, {torch.nn.Linear}, dtype=torch.qint8)
    text = " ".join(it["text"] for it in datasets.build_datasets(0, 6, 0, 0).heldout_natural)
    audio = speech.synth(text, voice="en-us", rate=160, pitch=50).astype(np.float32) / 32767.0
    print(f"live streaming step (models/streaming.py), tiny-en, {audio.size / SR:.1f} s of speech, 2 threads "
          "(compute per chunk / chunk duration; < 1 keeps up):")
    for rc in sorted(CHUNK_MS):
        row = []
        for name, model in (("fp32", base), ("int8", int8)):
            stream = LiveStream(model, rc)
            step = int(stream.chunk_s * SR)
            times = []
            for at in range(0, audio.size, step):
                t = time.perf_counter()
                stream.feed(audio[at:at + step])
                times.append(time.perf_counter() - t)
            stream.finish()
            row.append(f"{name} {np.median(times[2:]) / stream.chunk_s:.3f}")
        print(f"  {CHUNK_MS[rc]:5d} ms chunks: " + ", ".join(row))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sentences", type=int, default=6)
    p.add_argument("--passes", type=int, default=2)
    p.add_argument("--interval", type=float, default=None, help="live_interval_s (default: the config's)")
    p.add_argument("--chunks", action="store_true", help="also time the cache-aware streaming step per chunk")
    args = p.parse_args()
    from ctrlspeak import config

    partial_latency(args.sentences, args.passes, args.interval or config.Config().live_interval_s)
    if args.chunks:
        chunk_compute()
    return 0


if __name__ == "__main__":
    sys.exit(main())
