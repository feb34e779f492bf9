"""keep_alive_minutes: the supervisor's unload/reload and the daemon's use of it, with the fakes
of tests/fakes.py (worker client, recorder, output, clock) (the real worker is in tests/integration and
tests/desktop/test_keepalive.py)."""
from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import Future

import numpy as np
import pytest

from ctrlspeak.daemon import core as daemon_mod
from ctrlspeak.ipc import ModelRef, WorkerReady, WorkerSettings
from ctrlspeak.supervision.supervisor import Backoff, Supervisor
from tests.fakes import REF, FakeClock, FakeWorkers, dictate, make_daemon, pump, speech, wait


# -- the supervisor -------------------------------------------------------------------
def _sup(workers: FakeWorkers) -> Supervisor:
    sup = Supervisor(lambda ref: WorkerSettings(model=ref), REF, client_factory=workers, backoff=Backoff(0.01, 0.05))
    sup.start()
    wait(lambda: sup.ready is not None, what="the first worker")
    return sup


def test_supervisor_unload_stops_the_worker_without_a_restart_and_submit_reloads(workers):
    sup = _sup(workers)
    first = workers.instances[0]
    assert sup.unload()
    wait(first.closed.is_set, what="the unloaded worker to be closed")
    time.sleep(0.1)  # a crash would be restarted after 10 ms: an unload must not be
    assert len(workers.instances) == 1 and sup.ready is None and sup.pid is None and sup.unloaded
    assert sup.submit(np.zeros(1600, np.float32)).result(timeout=5).text == "words from worker 4001"
    assert len(workers.instances) == 2 and not sup.unloaded
    sup.close()


def test_supervisor_holds_requests_until_the_reloaded_worker_is_ready(workers):
    sup = _sup(workers)
    assert sup.unload()
    workers.auto_boot = False
    assert sup.reload() and not sup.reload(), "a second reload starts nothing"
    f = sup.submit(np.zeros(1600, np.float32))
    time.sleep(0.1)
    assert not f.done() and workers.instances[1].submitted == []
    workers.instances[1].boot()
    assert f.result(timeout=5).text == "words from worker 4001"
    sup.close()


def test_supervisor_refuses_to_unload_with_a_request_pending_or_no_ready_worker(workers):
    workers.hang = True
    sup = _sup(workers)
    sup.submit(np.zeros(1600, np.float32))
    assert not sup.unload()
    assert not workers.instances[0].closed.is_set() and sup.ready is not None
    sup.close()
    workers.auto_boot = False
    booting = Supervisor(lambda ref: WorkerSettings(model=ref), REF, client_factory=workers)
    booting.start()
    assert not booting.unload(), "a worker still loading is not unloaded"
    booting.close()


def test_supervisor_refuses_to_unload_during_an_in_place_switch(workers):
    sup = _sup(workers)
    loading: Future = Future()
    workers.instances[0].load_model = lambda ref: loading
    sup.switch(ModelRef("other", "file", path="/o.nemo"))
    assert not sup.unload()
    loading.set_result(WorkerReady("other", "ctc", "cpu", "float32", 1, 0.1, 0.1, 1, 1))
    assert sup.unload() and sup.model.name == "other"
    sup.close()


def test_supervisor_switch_while_unloaded_starts_the_new_model(workers):
    sup = _sup(workers)
    assert sup.unload()
    other = ModelRef("other", "file", path="/o.nemo")
    assert sup.switch(other).result(timeout=5).model == "other"
    assert sup.model is other and not sup.unloaded and sup.ready is not None
    sup.close()


# -- the daemon -----------------------------------------------------------------------
def test_the_daemon_unloads_after_the_idle_time(workers):
    clock = FakeClock()
    d, events = make_daemon(2.0, clock)
    pump(d, lambda: d.snapshot()["state"] == "ready")
    assert d._keepalive.wait_s(clock()) == pytest.approx(120.0), "the loop blocks until the deadline"
    clock.now += 119.0
    d._keep_alive_tick()
    assert d.worker_state.phase != "unloaded" and not workers.instances[0].closed.is_set()
    clock.now += 1.0
    d._keep_alive_tick()
    wait(workers.instances[0].closed.is_set, what="the worker to be stopped")
    assert d.snapshot()["state"] == "idle" and d.snapshot()["unloaded"] is True
    assert d.snapshot()["worker_ready"] is False and d.snapshot()["worker_pid"] is None
    assert events[-1].state == "idle" and "unloaded" in events[-1].message and "free memory" in events[-1].message
    assert d._keepalive.wait_s(clock()) is None, "unloaded: the loop blocks with no timeout"
    d.supervisor.close()


def test_never_unloads_during_a_recording_or_while_transcribing(workers):
    clock = FakeClock()
    d, _ = make_daemon(1.0, clock)
    pump(d, lambda: d.snapshot()["state"] == "ready")
    workers.instances[0].hang = True  # the transcription stays pending
    assert d.start_recording("test") is None
    clock.now += 600.0
    d._on_audio(speech())
    d._keep_alive_tick()
    assert d._keepalive.wait_s(clock()) is None
    d.stop_recording()
    clock.now += 600.0
    d._keep_alive_tick()
    assert d.dictations.finishing and d.worker_state.phase != "unloaded" and d.supervisor.pid == 4000
    assert not workers.instances[0].closed.is_set()
    # the daemon's own guard aside, the supervisor refuses too while a request is pending
    assert not d.supervisor.unload()
    d.supervisor.close()


def test_the_idle_count_restarts_after_a_dictation(workers):
    clock = FakeClock()
    d, _ = make_daemon(1.0, clock)
    pump(d, lambda: d.snapshot()["state"] == "ready")
    clock.now += 50.0
    assert dictate(d, clock) == "words from worker 4000"
    clock.now += 30.0  # 81 s since the daemon first went idle, 30 s since the dictation
    d._keep_alive_tick()
    assert d.worker_state.phase != "unloaded"
    assert d._keepalive.wait_s(clock()) == pytest.approx(30.0)
    clock.now += 30.0
    d._keep_alive_tick()
    assert d.worker_state.phase == "unloaded"
    d.supervisor.close()


def _unloaded_daemon():
    """A daemon with a one-minute keep-alive, ready, then idle for that minute: unloaded."""
    clock = FakeClock()
    d, events = make_daemon(1.0, clock)
    pump(d, lambda: d.snapshot()["state"] == "ready")
    clock.now += 60.0
    d._keep_alive_tick()
    assert d.worker_state.phase == "unloaded"
    return d, events


def test_the_next_start_reloads_and_the_recording_made_meanwhile_is_delivered(workers):
    d, events = _unloaded_daemon()
    assert len(workers.instances) == 1
    workers.auto_boot = False  # the reload takes its time: the test says when it is done
    n = len(events)
    d._on_command(daemon_mod.Command({"cmd": "start"}, reply := Future()))
    assert reply.result(timeout=1)["state"] == "recording"
    assert len(workers.instances) == 2, "the tap started a worker at once"
    d._on_audio(speech(1.5))
    d.stop_recording()
    time.sleep(0.1)
    assert workers.instances[1].submitted == [] and d.dictations.finishing, "the segment waits for the worker"
    assert d.snapshot()["state"] == "transcribing"
    workers.instances[1].boot()
    pump(d, lambda: d.parts.output.texts and d.snapshot().get("worker_ready"))
    assert d.parts.output.texts == ["words from worker 4001"]
    assert workers.instances[1].submitted and workers.instances[0].submitted == []
    states = [e.state for e in events[n:]]
    # no loading/ready flicker over the recording (the fake answers before its ready event is handled)
    assert states[:3] == ["recording", "transcribing", "done"] and set(states[3:]) <= {"ready"}, states
    assert d.snapshot()["worker_ready"] and not d.snapshot()["unloaded"]
    d.supervisor.close()


def test_models_use_while_unloaded_loads_the_new_model(workers):
    d, _ = _unloaded_daemon()
    d._on_command(daemon_mod.Command({"cmd": "model", "name": "tiny-en"}, reply := Future()))
    assert reply.result(timeout=1) == {"switching": "tiny-en"}
    pump(d, lambda: d.worker_state.switching_to is None and d.worker_state.ready is not None and d.snapshot()["state"] == "ready")
    assert d.worker_state.model_name == "tiny-en" and d.worker_state.phase != "unloaded" and len(workers.instances) == 2
    assert dictate(d) == "words from worker 4001"
    d.supervisor.close()


def test_zero_keeps_the_model_loaded(workers):
    clock = FakeClock()
    d, _ = make_daemon(0.0, clock)
    pump(d, lambda: d.snapshot()["state"] == "ready")
    clock.now += 1e7
    d._keep_alive_tick()
    assert d._keepalive.wait_s(clock()) is None
    assert d.worker_state.phase != "unloaded" and not workers.instances[0].closed.is_set()
    d.supervisor.close()


class _CountingQueue(queue.Queue):
    def __init__(self) -> None:
        super().__init__()
        self.gets = 0
        self.blocked_for_good = threading.Event()  # set while a get waits with no timeout

    def get(self, block=True, timeout=None):
        self.gets += 1
        if timeout is None:
            self.blocked_for_good.set()
        try:
            return super().get(block, timeout)
        finally:
            self.blocked_for_good.clear()


def test_the_main_loop_wakes_by_itself_to_unload_and_does_not_poll(workers):
    d, _ = make_daemon(0.004)  # 0.24 s, real clock
    d._inbox = inbox = _CountingQueue()  # the worker's callbacks post here from now on
    loop = threading.Thread(target=d._loop, daemon=True)
    loop.start()
    wait(lambda: (d.worker_state.phase == "unloaded"), timeout=10, what="the unload")
    wait(workers.instances[0].closed.is_set, what="the worker to be stopped")
    # the loop goes round once more after the unload; count from when it blocks for good
    wait(inbox.blocked_for_good.is_set, what="the loop to block with nothing due")
    gets = inbox.gets
    time.sleep(0.5)
    assert inbox.gets == gets, "an unloaded, idle daemon blocks: no wake-ups"
    # the ready worker's state and its announcement, the unload's state, one deadline, a last round
    assert gets <= 6, f"{gets} wake-ups for one ready worker, one unload and one deadline: polling?"
    # and it is still usable: a tap reloads, the text comes through
    d._stop.forced = True
    inbox.put(daemon_mod.Command({"cmd": "cancel"}, Future()))
    loop.join(5)
    assert not loop.is_alive()
    d._stop.forced = False
    assert dictate(d) == "words from worker 4001"
    d.supervisor.close()
