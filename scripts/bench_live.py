#!/usr/bin/env python3
"""Live text, measured: partial latency, what live mode costs, and the streaming step per chunk.

Not a timed test: run it by hand, on an otherwise idle machine. Three parts:

1. **Partial latency** at real-time pacing, through the live path the daemon and
   ``transcribe --stream`` share (ctrlspeak.commands.stream): a dictation of held-out espeak-ng
   sentences with pauses, fed at the audio's pace to a real spawned worker. For each word, the
   time from its end in the audio to the first partial event that shows it: the partial's words
   aligned to the dictation's (difflib), so a word the model drops or mishears is left out (and
   counted) rather than moving every later word's first appearance to its successor's. Run
   three ways, interleaved: streamed (the open segment to the worker's cache-aware stream in
   160 ms chunks, what tiny-en does with live on), decoded again (the open segment decoded
   whole every live_interval_s, what an offline model does) and live off (a segment's text
   once a pause ends it), so the ratios are what each buys.
2. **What live costs**: the worker's CPU seconds per second of speech, each way against off.
3. **The streaming step** (``--chunks``): the live streaming path (models/streaming.py: an
   exact incremental mel, then NeMo's cache-aware ``conformer_stream_step``), a chunk's audio
   at a time, compute over chunk duration at each chunk size, float32 and with a dynamic int8
   encoder, 2 threads: on the bundled model, and with ``--big`` on a random-weight model of
   the 0.6B streaming shape (24 x 1024, Nemotron streaming's chunk sizes) built in memory, its
   blank logit raised so that random weights do not emit a token at every frame.

Word ends come from espeak-ng itself: each sentence's prefixes are spoken alone and their
length (trailing quiet trimmed) is where that word ends.

Usage: python scripts/bench_live.py [--sentences 6] [--passes 2] [--chunks] [--big]
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
        self.seen: list[tuple[float, list[str]]] = []  # (seconds since t0, words shown)

    def partial(self, _name: str, p) -> None:
        if p is not None:
            self.seen.append((time.monotonic() - self.t0, f"{p.final} {p.tentative}".split()))

    def final(self, _result: dict) -> None:
        pass


def _latencies(seen: list[tuple[float, list[str]]], words: list[str], ends: list[float]) -> list[float]:
    """Each word's delay from its end to the first partial that shows it, for the words some
    partial shows (aligned to ``words``: the model's drops and slips shift nothing)."""
    import difflib

    first: dict[int, float] = {}
    for t, shown in seen:
        matcher = difflib.SequenceMatcher(a=words, b=shown, autojunk=False)
        for block in matcher.get_matching_blocks():
            for k in range(block.a, block.a + block.size):
                first.setdefault(k, t)
    return [first[k] - end for k, end in enumerate(ends) if k in first]


#: the three ways, by name: (decode the open segment, its chunk; 0 decodes it again whole)
WAYS = {"streamed": (True, 160), "decoded again": (True, 0), "live off": (False, 0)}


def _run(client, path: Path, cfg, way: str) -> tuple[list[tuple[float, list[str]]], float, str]:
    import dataclasses

    import psutil

    from ctrlspeak.audio.files import FileStream
    from ctrlspeak.commands.stream import stream_file
    from ctrlspeak.ipc import TranscribeOptions

    options = TranscribeOptions(cfg.language, cfg.target_language, cfg.punctuation)
    worker = psutil.Process(client.pid)
    cpu0 = sum(worker.cpu_times()[:2])
    stream = FileStream(path)
    rec = Recorder()
    decode_open, chunk_ms = WAYS[way]
    try:
        result = stream_file(lambda a, piece=None: client.submit(a, dataclasses.replace(options, stream=piece)),
                             lambda f: f.result(timeout=120), str(path), stream, cfg, rec, realtime=True,
                             decode_open=decode_open, chunk_ms=chunk_ms)
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
    words = " ".join(sentences).split()
    cfg = config.Config(model="tiny-en", threads=2, live_interval_s=interval_s)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "dictation.wav"
        sf.write(path, audio, SR, subtype="PCM_16")
        client = WorkerClient(settings_from_config(cfg, registry.resolve("tiny-en")))
        client.start()
        try:
            client.ready.result(timeout=300)
            rows = {way: ([], 0.0) for way in WAYS}
            texts = {}
            for _ in range(passes):
                for way in WAYS:  # interleaved: drift on the machine hits each alike
                    seen, cpu, texts[way] = _run(client, path, cfg, way)
                    lat, total = rows[way]
                    rows[way] = (lat + _latencies(seen, words, ends), total + cpu)
        finally:
            client.close()
    speech_s = audio.size / SR * passes
    print(f"partial latency, tiny-en, {len(sentences)} held-out sentences ({audio.size / SR:.1f} s, "
          f"{len(ends)} words), real-time pacing, live_interval_s {interval_s:g}, {passes} pass(es) each, "
          "interleaved:")
    for way, (lat, cpu) in rows.items():
        print(f"  {way:13s}: word end -> first partial p50 {_pct(lat, 50):.2f} s, "
              f"p95 {_pct(lat, 95):.2f} s ({len(lat)} of {len(ends) * passes} words shown); worker CPU {cpu / speech_s:.3f} s per s of speech")
    off = rows["live off"]
    for way in ("streamed", "decoded again"):
        on = rows[way]
        print(f"  {way} / live off: latency p50 {_pct(on[0], 50) / _pct(off[0], 50):.2f}, "
              f"worker CPU {on[1] / max(off[1], 1e-9):.2f}; costs {(on[1] - off[1]) / speech_s:.3f} CPU s "
              "per s of speech")
    print("  target: streamed p50 <= 0.4 s")
    print(f"  final text the same all three ways: {len(set(texts.values())) == 1}")


def _tiny_models():
    import os

    from nemo.collections.asr.models import ASRModel

    from ctrlspeak.models import registry

    cwd = os.getcwd()
    try:
        return [ASRModel.restore_from(registry.resolve("tiny-en").path, map_location="cpu").eval() for _ in "ab"]
    finally:
        os.chdir(cwd)


def _big_models():
    """Two random-weight models of the 0.6B streaming shape (24 x 1024, 128 mel features,
    Nemotron streaming's four chunk sizes), built in memory: no file of 2.5 GB is written."""
    import importlib.util
    import os

    import torch

    from tinyen import model as tiny_model

    spec = importlib.util.spec_from_file_location("build_test_models", REPO / "scripts" / "build_test_models.py")
    builder = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(builder)
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        cwd = os.getcwd()
        try:
            tok = builder._train_bpe(Path(tmp) / "tok", 1024, 1)
            cfg = tiny_model.model_config(tok, d_model=1024, n_layers=24, n_heads=8, conv_channels=256,
                                          pred_hidden=640)
            cfg["preprocessor"]["features"] = cfg["encoder"]["feat_in"] = 128
            cfg["encoder"]["att_context_size"] = [[70, 13], [70, 6], [70, 1], [70, 0]]
            cfg["decoder"]["prednet"]["pred_rnn_layers"] = 2
            for _ in "ab":
                torch.manual_seed(0)
                m = tiny_model.build_model(cfg).eval()
                with torch.no_grad():  # random weights would emit a token at every frame
                    m.joint.joint_net[-1].bias[m.joint.num_classes_with_blank - 1] += 50.0
                out.append(m)
        finally:
            os.chdir(cwd)
    return out


def chunk_compute(big: bool) -> None:
    """The live streaming path (models/streaming.py: exact incremental mel, then NeMo's
    conformer_stream_step) fed a chunk's audio at a time: compute per chunk / its duration."""
    import torch

    from ctrlspeak.models.streaming import LiveStream, chunk_choices
    from tinyen import datasets, speech

    torch.set_num_threads(2)
    base, int8 = _big_models() if big else _tiny_models()
    n = sum(p.numel() for p in base.parameters())
    int8.encoder = torch.ao.quantization.quantize_dynamic(int8.encoder, {torch.nn.Linear}, dtype=torch.qint8)
    text = " ".join(it["text"] for it in datasets.build_datasets(0, 6 if not big else 2, 0, 0).heldout_natural)
    audio = speech.synth(text, voice="en-us", rate=160, pitch=50).astype(np.float32)
    name = f"the 0.6B streaming shape, random weights ({n / 1e6:.0f}M params)" if big else "tiny-en"
    print(f"live streaming step (models/streaming.py), {name}, {audio.size / SR:.1f} s of speech, 2 threads "
          "(compute per chunk / chunk duration; < 1 keeps up):")
    for chunk_ms, rc in sorted(chunk_choices(base).items()):
        row = []
        for kind, model in (("fp32", base), ("int8", int8)):
            stream = LiveStream(model, rc)
            step = int(stream.chunk_s * SR)
            times = []
            for at in range(0, audio.size, step):
                t = time.perf_counter()
                stream.feed(audio[at:at + step])
                times.append(time.perf_counter() - t)
            stream.finish()
            row.append(f"{kind} {np.median(times[2:]) / stream.chunk_s:.3f}")
        target = {560: " (target int8 <= 0.35)", 160: " (target int8 <= 1.0)"}.get(chunk_ms, "") if big else ""
        print(f"  {chunk_ms:5d} ms chunks: " + ", ".join(row) + target)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sentences", type=int, default=6)
    p.add_argument("--passes", type=int, default=2)
    p.add_argument("--interval", type=float, default=None, help="live_interval_s (default: the config's)")
    p.add_argument("--chunks", action="store_true", help="also time the cache-aware streaming step per chunk")
    p.add_argument("--big", action="store_true", help="with --chunks: the 0.6B streaming shape too")
    p.add_argument("--no-latency", dest="latency", action="store_false", help="skip the partial latency part")
    args = p.parse_args()
    from ctrlspeak import config

    if args.latency:
        partial_latency(args.sentences, args.passes, args.interval or config.Config().live_interval_s)
    if args.chunks:
        chunk_compute(big=False)
        if args.big:
            chunk_compute(big=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
