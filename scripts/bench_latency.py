#!/usr/bin/env python3
"""Tail latency and overhead of the real daemon, side by side (issue "Speed", parts 3 and 4).

Runs the real daemon in this process (``ctrlspeak bench``'s DaemonRig: no hotkey, tray,
history or journal; its control socket in a temporary directory) with the file source in
the microphone's place at real-time pacing, and plays a ~3 s and a ~30 s dictation with
natural pauses (the bundled sample, 0.6-1.0 s between sentences), interleaved, ``--runs``
times each after one warm-up. Prints:

* stop to text (the daemon's latency_s: the stop handled to the text delivered), p50 and p95,
  for each length, and the worker's compute it waited for;
* the ratio long / short (target: at most 1.3);
* the overhead, stop to text minus that compute: queues, IPC, segmentation, joining and
  output (target for a small model: p50 at most 15 ms).

Not a timed test: run it by hand. Usage:
    python scripts/bench_latency.py [--model tiny-en] [--runs 5] [--short-s 3] [--long-s 30]
"""
from __future__ import annotations

import argparse
import os
import sys

from ctrlspeak import config
from ctrlspeak.commands import bench, bench_report
from ctrlspeak.ipc import SAMPLE_RATE

RATIO_TARGET = 1.3
OVERHEAD_TARGET_S = 0.015


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tiny-en")
    parser.add_argument("--runs", type=int, default=5, help="dictations of each length (default: 5)")
    parser.add_argument("--short-s", type=float, default=3.0)
    parser.add_argument("--long-s", type=float, default=30.0)
    parser.add_argument("--audio", action="append", metavar="FILE", help="speech to build the dictations from")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the bundled model needs no network

    cfg = config.load({"model": args.model})
    sentences = bench.load_sentences(args.audio)
    trail = min(bench.TRAIL_S, cfg.min_silence_s / 2)
    clips = [bench.dictation(sentences, args.short_s, 0, trail), bench.dictation(sentences, args.long_s, 1, trail)]

    def say(line: str) -> None:
        print(f"bench_latency: {line}", file=sys.stderr, flush=True)

    with bench.DaemonRig(cfg) as rig:
        say(f"starting the daemon with {cfg.model}")
        load_s = rig.start()
        say(f"ready after {load_s:.1f} s")
        runs = bench.dictate_interleaved(rig, {c.size / SAMPLE_RATE: c for c in clips}, args.runs, say=say)
        ready = rig.daemon.supervisor.ready if rig.daemon.supervisor else None

    short, long = sorted(runs)
    p = bench_report.percentile
    ms = bench_report.format_duration
    rows = []
    for seconds in (short, long):
        lat = [d.latency_s for d in runs[seconds]]
        comp = [d.compute_s for d in runs[seconds]]
        over = [d.overhead_s for d in runs[seconds]]
        rows.append([f"{seconds:.1f} s dictation", ms(p(lat, 50)), ms(p(lat, 95)), ms(p(comp, 50)),
                     ms(p(over, 50)), ms(min(lat)), ms(max(lat)), str(len(lat))])
    print(f"model {ready.model if ready else cfg.model} on {ready.device if ready else '?'}, "
          f"{ready.threads if ready else '?'} thread(s); {args.runs} run(s) each, interleaved, after a warm-up")
    print(bench_report.format_table(["stop to text", "p50", "p95", "compute p50", "overhead p50", "min", "max", "runs"], rows))
    lat_s = [d.latency_s for d in runs[short]]
    lat_l = [d.latency_s for d in runs[long]]
    ratio50, ratio95 = p(lat_l, 50) / p(lat_s, 50), p(lat_l, 95) / p(lat_s, 95)
    over = [d.overhead_s for r in runs.values() for d in r]
    print()
    print(f"ratio {long:.1f} s / {short:.1f} s: p50 {ratio50:.2f}, p95 {ratio95:.2f} "
          f"(target <= {RATIO_TARGET}: {'met' if ratio50 <= RATIO_TARGET else 'NOT met'} at p50, "
          f"{'met' if ratio95 <= RATIO_TARGET else 'NOT met'} at p95)")
    verdict = "met" if p(over, 50) <= OVERHEAD_TARGET_S else "NOT met"
    print(f"overhead (stop to text - compute), all {len(over)} runs: p50 {ms(p(over, 50))}, p95 {ms(p(over, 95))} "
          f"(target p50 <= {OVERHEAD_TARGET_S * 1000:.0f} ms: {verdict})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
