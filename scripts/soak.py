#!/usr/bin/env python3
"""Soak test: a few hundred back-to-back recordings through the real daemon.

Starts a private virtual desktop (Xvfb, PulseAudio with a virtual microphone, D-Bus; see
tests/desktop/harness.py), runs `ctrlspeak run --output stdout` with a small model, and
drives N recordings through the control socket: start, a short espeak-ng sentence on the
microphone, stop, wait for the `done` event. Reports the daemon's and the worker's RSS and
open file descriptors after warm-up and at the end, and how many transcripts came back.

Not a timed test: run it by hand. Usage: python scripts/soak.py [--recordings 300] [--model tiny-en]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.desktop.harness import Desktop, private_env, speak, wait_until  # noqa: E402


def _proc_stats(pid: int) -> tuple[int, int]:
    import psutil

    p = psutil.Process(pid)
    return p.memory_info().rss, p.num_fds()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recordings", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--model", default="tiny-en")
    args = parser.parse_args()

    from ctrlspeak import control

    sentences = ["open the door please", "the cat sat on the red chair", "call my mother tomorrow morning"]
    with tempfile.TemporaryDirectory() as tmp, Desktop() as desktop:
        speech = [speak(s) for s in sentences]
        env = private_env(desktop.env, Path(tmp), CTRLSPEAK_NOTIFY="errors")
        runtime = Path(env["CTRLSPEAK_RUNTIME_DIR"])
        log = open(Path(tmp) / "daemon.log", "wb")
        daemon = subprocess.Popen([sys.executable, "-m", "ctrlspeak", "run", "--model", args.model, "--output",
                                   "stdout", "--no-hotkey", "--no-tray"], env=env, stdout=log,
                                  stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        sock = runtime / "control.sock"
        os.environ["CTRLSPEAK_RUNTIME_DIR"] = str(runtime)
        status = wait_until(lambda: sock.exists() and (s := control.request("status", path=sock))["worker_ready"]
                            and s, 300, "the daemon to be ready", interval=0.5)
        worker = status["worker_pid"]
        events = control.follow(path=sock, timeout=120)
        done = 0
        lost: list[int] = []
        marks: dict[str, tuple] = {}
        t0 = time.monotonic()
        for i in range(args.recordings):
            if i == args.warmup:
                marks["after warm-up"] = (i, *_proc_stats(daemon.pid), *_proc_stats(worker))
            control.request("start", path=sock)
            desktop.mic.play(speech[i % len(speech)], lead_s=0.2, tail_s=0.4)
            desktop.mic.wait_played(timeout=60)
            control.request("stop", path=sock)
            for event in events:
                if event.get("state") == "done":
                    done += 1
                    break
                if event.get("state") in ("idle", "error"):
                    lost.append(i)
                    break
        elapsed = time.monotonic() - t0
        marks["end"] = (args.recordings, *_proc_stats(daemon.pid), *_proc_stats(worker))
        daemon.terminate()
        daemon.wait(60)
        log.close()
        history = subprocess.run([sys.executable, "-m", "ctrlspeak", "history", "--json", "--limit", "100000"],
                                 env=env, capture_output=True, text=True)
        in_history = len(json.loads(history.stdout)["entries"])

    print(f"model {args.model}: {args.recordings} recordings in {elapsed:.0f} s")
    print(f"{'':14} {'recording':>9} {'daemon RSS':>11} {'daemon fds':>10} {'worker RSS':>11} {'worker fds':>10}")
    for name, (i, d_rss, d_fd, w_rss, w_fd) in marks.items():
        print(f"{name:14} {i:9d} {d_rss / 2**20:9.1f}MB {d_fd:10d} {w_rss / 2**20:9.1f}MB {w_fd:10d}")
    (_, d0, f0, w0, g0), (_, d1, f1, w1, g1) = marks["after warm-up"], marks["end"]
    print(f"growth after warm-up: daemon RSS {100 * (d1 - d0) / d0:+.1f} %, worker RSS {100 * (w1 - w0) / w0:+.1f} %, "
          f"fds {f1 - f0:+d} / {g1 - g0:+d}")
    print(f"transcripts delivered: {done}/{args.recordings}, in history: {in_history}, lost: {len(lost)}")
    return 0 if done == args.recordings and not lost else 1


if __name__ == "__main__":
    sys.exit(main())
