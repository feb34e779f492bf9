#!/usr/bin/env python3
"""Benchmark: worker spawn -> ready, plain ``restore_from`` against the weights cache.

The model is a Parakeet-TDT-0.6B-shaped network with random weights (FastConformer d_model
1024 x 24 layers, 128 mels, 2x640 LSTM prediction net, 640 joint, TDT durations 0-4), built
offline by this script into ``.cache/bench/`` (about 2.5 GB, never committed).

Both sides are the real spawned worker (``WorkerClient``), same threads, warm-up included, timed
from ``start()`` to ``WorkerReady`` as the parent sees it. Runs are interleaved (A, B, A, B...)
so machine noise hits both alike. Peak RSS is the worker's ``VmHWM`` read from /proc just
after ready (Linux).

  A  plain: ``ASRModel.restore_from`` (untar to $TMPDIR, random init, ``torch.load``)
  B  cache: ``models/fastload.py`` (extracted entry, no init, mmap'd weights assigned)

The cache entry is built by one extra, unmeasured-by-the-ratio start before the runs (its time is
printed too: the one-off price a user pays on the first start after a download).

With ``--quantize int8`` both sides load an int8 encoder: A quantises after ``restore_from``, B
reads the int8 weights the first start added to the entry.

Usage: python scripts/bench_cold_start.py [--runs 3] [--threads 2] [--quantize off|int8] [--model PATH.nemo]
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_MODEL = REPO / ".cache" / "bench" / "parakeet-tdt-0.6b-shape.nemo"


def _builder():
    spec = importlib.util.spec_from_file_location("build_test_models", REPO / "scripts" / "build_test_models.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build_parakeet_shape(out: Path, vocab: int = 1024) -> int:
    """Write a random-weight Parakeet-TDT-0.6B-shaped .nemo to ``out``; return its parameter count."""
    import torch
    from omegaconf import OmegaConf

    from nemo.collections.asr.models import EncDecRNNTBPEModel

    builder = _builder()
    with tempfile.TemporaryDirectory() as tmp:
        cwd = os.getcwd()
        try:
            cfg = builder._transducer_cfg(builder._train_bpe(Path(tmp) / "tok", vocab, 1), tdt=True)
            cfg["preprocessor"]["features"] = 128
            cfg["encoder"].update(feat_in=128, d_model=1024, n_layers=24, n_heads=8,
                                  subsampling_conv_channels=256)
            cfg["model_defaults"].update(enc_hidden=1024, pred_hidden=640, joint_hidden=640)
            cfg["decoder"]["prednet"].update(pred_hidden=640, pred_rnn_layers=2)
            cfg["joint"]["jointnet"].update(joint_hidden=640, encoder_hidden=1024, pred_hidden=640)
            torch.manual_seed(0)
            model = EncDecRNNTBPEModel(cfg=OmegaConf.create(cfg), trainer=None).eval()
            n = sum(p.numel() for p in model.parameters())
            out.parent.mkdir(parents=True, exist_ok=True)
            part = out.with_suffix(".part")
            model.save_to(str(part))
            os.replace(part, out)
        finally:
            os.chdir(cwd)
    return n


def _peak_rss(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def start_once(model: Path, threads: int, cache_dir: str | None, quantize: str) -> tuple[float, int, str]:
    from ctrlspeak.ipc import ModelRef, WorkerSettings
    from ctrlspeak.supervision.client import WorkerClient

    messages: list[str] = []
    client = WorkerClient(WorkerSettings(model=ModelRef(model.stem, "file", path=str(model)),
                                         threads=threads, compute_device="cpu",
                                         weights_cache_dir=cache_dir, quantize=quantize),
                          on_progress=lambda p: messages.append(p.message))
    t0 = time.perf_counter()
    client.start()
    try:
        client.wait_ready(timeout=900)
        took = time.perf_counter() - t0
        peak = _peak_rss(client.pid)
    finally:
        client.close(timeout=30)
    restored = next((m for m in messages if m.startswith("restored")), "?")
    return took, peak, restored


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--quantize", choices=("off", "int8"), default=None,
                   help="the encoder on both sides (default: the config default)")
    a = p.parse_args(argv)
    if a.quantize is None:
        from ctrlspeak.config import Config

        a.quantize = Config().quantize

    if not a.model.is_file():
        t0 = time.perf_counter()
        n = build_parakeet_shape(a.model)
        print(f"built {a.model} ({n / 1e6:.0f} M params, {a.model.stat().st_size / 2**30:.2f} GiB) "
              f"in {time.perf_counter() - t0:.0f} s", flush=True)
    cache = Path(tempfile.mkdtemp(prefix="ctrlspeak-bench-weights-"))
    try:
        first, first_peak, how = start_once(a.model, a.threads, str(cache), a.quantize)
        print(f"first start with the cache (restore_from + writing the entry): {first:.1f} s, "
              f"peak RSS {first_peak / 2**30:.2f} GiB ({how})", flush=True)
        plain, cached = [], []
        for i in range(a.runs):
            for label, store, cache_dir in (("plain", plain, None), ("cache", cached, str(cache))):
                took, peak, how = start_once(a.model, a.threads, cache_dir, a.quantize)
                store.append((took, peak))
                print(f"run {i + 1} {label:5s}: spawn->ready {took:6.1f} s, peak RSS "
                      f"{peak / 2**30:5.2f} GiB  ({how})", flush=True)
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    p_t = statistics.median(t for t, _ in plain)
    c_t = statistics.median(t for t, _ in cached)
    p_m = statistics.median(m for _, m in plain)
    c_m = statistics.median(m for _, m in cached)
    print()
    print(f"{'':22s}{'restore_from':>14s}{'weights cache':>15s}{'ratio':>8s}")
    print(f"{'spawn->ready (median)':22s}{p_t:13.1f}s{c_t:14.1f}s{c_t / p_t:8.2f}")
    print(f"{'peak RSS (median)':22s}{p_m / 2**30:11.2f}GiB{c_m / 2**30:12.2f}GiB{c_m / p_m:8.2f}")
    print(f"targets: time ratio <= 0.35, RSS ratio <= 0.6; {a.runs} runs each, {a.threads} threads, "
          f"encoder quantize={a.quantize}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
