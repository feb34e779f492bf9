from __future__ import annotations

import multiprocessing
import queue
import time

from ctrlspeak.ipc import Progress
from ctrlspeak.workers.channel import Channels


def test_progress_never_blocks_and_drops_the_stalest():
    ctx = multiprocessing.get_context("spawn")
    results, events = ctx.Queue(), ctx.Queue(maxsize=4)
    chan = Channels(results, events, min_interval_s=0.0, backlog=8)
    t0 = time.monotonic()
    for i in range(5000):
        chan.emit(Progress("download", i / 4999, f"step {i}"))
    assert time.monotonic() - t0 < 2.0, "emitting must not wait for a reader"
    got = []
    while True:
        try:
            got.append(events.get(timeout=0.5))
        except queue.Empty:
            break
    assert 1 <= len(got) <= 4 + 8 + 1, "stale progress was dropped, not queued"
    assert got[-1].message == "step 4999", "the newest progress survives"


def test_rate_limit_keeps_stage_changes_and_completion():
    sent = []

    class Sink:
        def put(self, item):
            sent.append(item)

    chan = Channels(None, Sink(), min_interval_s=10.0)
    chan.emit(Progress("import", 0.0))
    chan.emit(Progress("import", 0.5))  # rate-limited away
    chan.emit(Progress("import", 1.0))  # completion always goes out
    chan.emit(Progress("restore", 0.0))  # a new stage always goes out
    deadline = time.monotonic() + 5
    while len(sent) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [(p.stage, p.fraction) for p in sent] == [("import", 0.0), ("import", 1.0), ("restore", 0.0)]


def test_results_are_never_dropped():
    ctx = multiprocessing.get_context("spawn")
    results, events = ctx.Queue(), ctx.Queue(maxsize=1)
    chan = Channels(results, events)
    for i in range(200):
        chan.send_result(("transcript", i))
    assert [results.get(timeout=5)[1] for _ in range(200)] == list(range(200))
