#!/usr/bin/env python3
"""Benchmark: our worker path against NeMo's ``transcribe()`` on a WAV path.

Both sides run the same model, the same audio and the same thread count, each in its own
warm spawned process, and the runs are interleaved (A, B, A, B, ...) so that noise on a
shared 2-core machine hits both alike. Times are round trips seen from the parent.

  A  ctrlspeak: float32 array over a multiprocessing queue -> preprocessor -> encoder ->
     greedy decoding, no temp files, no DataLoader.
  B  what the original ctrlspeak did: write the clip to a temporary WAV, then
     ``model.transcribe([path])`` (a Lhotse DataLoader and a manifest per call).

Usage: python scripts/bench_transcribe.py [--model tiny-en] [--audio FILE] [--seconds 5 30] [--runs 7]
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent


def _nemo_side(model_path: str, threads: int, inbox, outbox) -> None:
    """Process B: NeMo's own path, as the original ctrlspeak used it."""
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(threads)
    from ctrlspeak.patches.tqdm_lock import apply_tqdm_lock

    apply_tqdm_lock()
    import soundfile as sf
    import torch

    torch.set_num_threads(threads)
    from nemo.collections.asr.models import ASRModel
    from nemo.utils import logging as nemo_logging

    nemo_logging.set_verbosity(nemo_logging.ERROR)
    cwd = os.getcwd()
    model = ASRModel.restore_from(model_path, map_location="cpu")
    os.chdir(cwd)
    model.eval()
    outbox.put("ready")
    with tempfile.TemporaryDirectory() as tmp:
        while True:
            audio = inbox.get()
            if audio is None:
                return
            t0 = time.perf_counter()
            path = os.path.join(tmp, "chunk.wav")
            sf.write(path, audio, 16000)
            t1 = time.perf_counter()
            hyps = model.transcribe([path], batch_size=1, verbose=False)
            t2 = time.perf_counter()
            outbox.put((hyps[0].text if hasattr(hyps[0], "text") else str(hyps[0]), t1 - t0, t2 - t1))


def _clip(base: np.ndarray, seconds: float) -> np.ndarray:
    n = int(seconds * 16000)
    reps = int(np.ceil(n / base.size))
    return np.tile(base, reps)[:n].astype(np.float32)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tiny-en")
    parser.add_argument("--audio", default=str(REPO / "samples" / "sample-en.wav"))
    parser.add_argument("--seconds", type=float, nargs="+", default=[5.0, 30.0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    from ctrlspeak import audio as audio_mod
    from ctrlspeak.ipc import WorkerSettings
    from ctrlspeak.models import registry
    from ctrlspeak.worker_client import WorkerClient

    ref = registry.resolve(args.model)
    model_path = str(registry.cached_path(ref))
    base = audio_mod.load_file(args.audio)

    ctx = multiprocessing.get_context("spawn")
    inbox, outbox = ctx.Queue(), ctx.Queue()
    nemo_proc = ctx.Process(target=_nemo_side, args=(model_path, args.threads, inbox, outbox))
    client = WorkerClient(WorkerSettings(model=ref, threads=args.threads, compute_device="cpu"))
    nemo_proc.start()
    client.start()
    ready = client.wait_ready(timeout=600)
    assert outbox.get(timeout=600) == "ready"
    print(f"model {ready.model} ({ready.family}), {args.threads} threads, device {ready.device}")
    print(f"{'clip':>6} {'ours p50':>10} {'nemo p50':>10} {'(wav write)':>12} {'ratio ours/nemo':>16}  same text")
    try:
        for seconds in args.seconds:
            clip = _clip(base, seconds)
            ours, theirs, writes, same = [], [], [], True
            for i in range(args.runs + 1):  # the first round is a warm-up, not counted
                t0 = time.perf_counter()
                transcript = client.transcribe(clip, timeout=600)
                t_ours = time.perf_counter() - t0
                t0 = time.perf_counter()
                inbox.put(clip)
                text, t_write, _ = outbox.get(timeout=600)
                t_theirs = time.perf_counter() - t0
                if i:
                    ours.append(t_ours)
                    theirs.append(t_theirs)
                    writes.append(t_write)
                    same &= transcript.text.strip() == text.strip()
            a, b = statistics.median(ours), statistics.median(theirs)
            print(f"{seconds:5.0f}s {a * 1000:9.1f}ms {b * 1000:9.1f}ms {statistics.median(writes) * 1000:10.1f}ms"
                  f" {a / b:15.2f}x  {'yes' if same else 'NO'}")
    finally:
        inbox.put(None)
        client.close()
        nemo_proc.join(30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
