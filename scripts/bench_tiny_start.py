#!/usr/bin/env python3
"""Benchmark: load-and-warm-up of the bundled tiny-en against the tiny-en it replaced.

Both sides are the real spawned worker (``WorkerClient``), same threads and settings, timed
from ``start()`` to ``WorkerReady`` (import, restore, warm-up) as the parent sees it, and the
model's own load time as the worker reports it. Runs are interleaved (old, new, old, new...) so
machine noise hits both alike, with the weights cache as a user has it after the first start
(``--no-cache``: plain ``restore_from`` on both sides).

The old model is read from git history (tiny-en v1, a CTC model, at ``--old-rev``) into
``.cache/bench/``; nothing is committed.

Usage: python scripts/bench_tiny_start.py [--runs 5] [--threads 2] [--no-cache]
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
NEW = REPO / "models" / "data" / "tiny-en.nemo"
#: the last commit with tiny-en v1 (CTC, 3.2M parameters)
OLD_REV = "913a83d"


def old_model(rev: str) -> Path:
    out = REPO / ".cache" / "bench" / f"tiny-en-{rev}.nemo"
    if not out.is_file():
        out.parent.mkdir(parents=True, exist_ok=True)
        blob = subprocess.run(["git", "-C", str(REPO), "show", f"{rev}:models/data/tiny-en.nemo"],
                              check=True, capture_output=True).stdout
        out.write_bytes(blob)
    return out


def start(model: Path, threads: int, cache: str | None) -> tuple[float, float]:
    from ctrlspeak.ipc import ModelRef, WorkerSettings
    from ctrlspeak.supervision.client import WorkerClient

    client = WorkerClient(WorkerSettings(model=ModelRef(model.stem, "file", path=str(model)),
                                         threads=threads, compute_device="cpu",
                                         weights_cache_dir=cache))
    t0 = time.perf_counter()
    client.start()
    try:
        ready = client.wait_ready(timeout=600)
        took = time.perf_counter() - t0
    finally:
        client.close(timeout=30)
    return took, ready.load_s


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--old-rev", default=OLD_REV)
    p.add_argument("--new", type=Path, default=NEW)
    p.add_argument("--no-cache", action="store_true", help="plain restore_from on both sides")
    a = p.parse_args(argv)
    models = {"old": old_model(a.old_rev), "new": a.new}
    cache = None if a.no_cache else tempfile.mkdtemp(prefix="ctrlspeak-bench-tiny-")
    results: dict[str, list[tuple[float, float]]] = {k: [] for k in models}
    try:
        if cache:
            for name, path in models.items():  # the first start writes each cache entry
                took, _ = start(path, a.threads, cache)
                print(f"first start {name} (writes the weights cache): {took:.1f} s", flush=True)
        for i in range(a.runs):
            for name, path in models.items():
                took, load = start(path, a.threads, cache)
                results[name].append((took, load))
                print(f"run {i + 1} {name}: spawn->ready {took:5.2f} s, model load {load:5.2f} s", flush=True)
    finally:
        if cache:
            shutil.rmtree(cache, ignore_errors=True)
    med = {k: (statistics.median(t for t, _ in v), statistics.median(m for _, m in v)) for k, v in results.items()}
    print()
    print(f"{'':24s}{'old (' + models['old'].name + ')':>26s}{'new':>10s}{'ratio':>8s}")
    print(f"{'spawn->ready (median)':24s}{med['old'][0]:25.2f}s{med['new'][0]:9.2f}s{med['new'][0] / med['old'][0]:8.2f}")
    print(f"{'model load (median)':24s}{med['old'][1]:25.2f}s{med['new'][1]:9.2f}s{med['new'][1] / med['old'][1]:8.2f}")
    print(f"target: ratio <= 1.0 (no slower); {a.runs} runs each, {a.threads} threads, "
          f"weights cache {'off' if a.no_cache else 'on'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
