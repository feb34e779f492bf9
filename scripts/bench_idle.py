#!/usr/bin/env python3
"""Idle footprint of the real daemon and its worker on a private virtual desktop.

Starts Xvfb + PulseAudio (virtual microphone) + D-Bus (tests/desktop/harness.py), runs
``ctrlspeak run`` with the global hotkey listener on (X11 record), and, once the worker is
ready, measures over ``--seconds`` (default 60) of idleness:

* CPU time used by the daemon and by the worker, as % of one core;
* the daemon's RSS (USS too: what it alone holds), and whether torch is loaded in it;
* the worker's RSS.

Then it dictates one sentence through the control socket and measures again, so that
"idle" includes a daemon that has done work. Not a timed test: run it by hand.

With ``--maps N`` it also prints where the daemon's RSS lies: the N largest mappings
(shared libraries, heap, anonymous memory), grouped by file.

With ``--live`` the daemon runs with ``live = true``, and the live overlay's process counts
in the daemon's CPU.

Usage: python scripts/bench_idle.py [--seconds 60] [--model tiny-en] [--maps 15] [--live]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.desktop.harness import Desktop, private_env, speak, wait_until  # noqa: E402


def _cpu_s(pid: int) -> float:
    import psutil

    t = psutil.Process(pid).cpu_times()
    return t.user + t.system


def _daemon_side_cpu_s(daemon: int, worker: int) -> float:
    """The daemon's CPU time and its children's but the worker's (the live overlay)."""
    import psutil

    children = [c.pid for c in psutil.Process(daemon).children() if c.pid != worker]
    return _cpu_s(daemon) + sum(_cpu_s(pid) for pid in children)


def _measure(daemon: int, worker: int, seconds: float) -> dict[str, float]:
    import psutil

    d0, w0, t0 = _daemon_side_cpu_s(daemon, worker), _cpu_s(worker), time.monotonic()
    time.sleep(seconds)
    d1, w1, t1 = _daemon_side_cpu_s(daemon, worker), _cpu_s(worker), time.monotonic()
    dp = psutil.Process(daemon)
    full = dp.memory_full_info()
    with open(f"/proc/{daemon}/maps", encoding="utf-8", errors="replace") as f:
        torch_mapped = any("libtorch" in line for line in f)
    return {"daemon_cpu": 100 * (d1 - d0) / (t1 - t0), "worker_cpu": 100 * (w1 - w0) / (t1 - t0),
            "daemon_rss": full.rss / 2**20, "daemon_uss": full.uss / 2**20,
            "worker_rss": psutil.Process(worker).memory_info().rss / 2**20,
            "torch_in_daemon": float(torch_mapped)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--model", default="tiny-en")
    parser.add_argument("--maps", type=int, default=0, metavar="N", help="show the daemon's N largest mappings")
    parser.add_argument("--live", action="store_true", help="run the daemon with live = true (and its overlay)")
    args = parser.parse_args()

    from ctrlspeak import control

    rows = {}
    with tempfile.TemporaryDirectory() as tmp, Desktop() as desktop:
        env = private_env(desktop.env, Path(tmp))
        runtime = Path(env["CTRLSPEAK_RUNTIME_DIR"])
        log = open(Path(tmp) / "daemon.log", "wb")
        live = ["--live"] if args.live else []
        daemon = subprocess.Popen([sys.executable, "-m", "ctrlspeak", "run", "--model", args.model,
                                   "--output", "stdout", *live], env=env, stdout=log, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL)
        try:
            sock = runtime / "control.sock"
            os.environ["CTRLSPEAK_RUNTIME_DIR"] = str(runtime)
            status = wait_until(lambda: sock.exists() and (s := control.request("status", path=sock))["worker_ready"]
                                and s, 300, "the daemon to be ready", interval=0.5)
            worker = status["worker_pid"]
            time.sleep(2.0)  # let start-up work settle
            rows["idle after start"] = _measure(daemon.pid, worker, args.seconds)
            control.request("start", path=sock)
            desktop.mic.play(speak("please send the report for my team"), lead_s=0.2, tail_s=0.4)
            desktop.mic.wait_played(timeout=60)
            control.request("stop", path=sock)
            wait_until(lambda: control.request("status", path=sock)["state"] == "ready", 60, "the transcript")
            time.sleep(2.0)
            rows["idle after a dictation"] = _measure(daemon.pid, worker, args.seconds)
            maps = _largest_maps(daemon.pid, args.maps) if args.maps else []
        finally:
            daemon.terminate()
            daemon.wait(60)
            log.close()

    print(f"model {args.model}, {args.seconds:.0f} s windows, hotkey listener on"
          + (", live = true (overlay CPU counted in the daemon's)" if args.live else ""))
    print(f"{'':24}{'daemon CPU':>11}{'worker CPU':>11}{'daemon RSS':>11}{'daemon USS':>11}"
          f"{'worker RSS':>11}{'torch in daemon':>16}")
    for name, r in rows.items():
        print(f"{name:24}{r['daemon_cpu']:10.2f}%{r['worker_cpu']:10.2f}%{r['daemon_rss']:9.1f}MB"
              f"{r['daemon_uss']:9.1f}MB{r['worker_rss']:9.1f}MB{'yes' if r['torch_in_daemon'] else 'no':>16}")
    print("targets: CPU < 0.5 % of one core each; daemon RSS < ~60 MB; no torch in the daemon")
    if maps:
        print(f"the daemon's {len(maps)} largest mappings (RSS, private part):")
        for path, rss, private in maps:
            print(f"  {rss / 2**20:6.1f}MB {private / 2**20:6.1f}MB  {path}")
    return 0


def _largest_maps(pid: int, n: int) -> list[tuple[str, int, int]]:
    import psutil

    grouped: dict[str, list[int]] = {}
    for m in psutil.Process(pid).memory_maps(grouped=True):
        entry = grouped.setdefault(m.path or "[anon]", [0, 0])
        entry[0] += m.rss
        entry[1] += m.private_clean + m.private_dirty
    return sorted(((p, r, q) for p, (r, q) in grouped.items()), key=lambda x: -x[1])[:n]


if __name__ == "__main__":
    sys.exit(main())
