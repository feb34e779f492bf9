"""keep_alive_minutes: the supervisor's unload/reload and the daemon's use of it, with a fake
worker client, recorder, output and clock (the real worker is in tests/integration and
tests/desktop/test_keepalive.py)."""
from __future__ import annotations

import functools
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass

import numpy as np
import pytest

from ctrlspeak import daemon as daemon_mod
from ctrlspeak.config import Config
from ctrlspeak.ipc import ModelRef, Timings, Transcript, WorkerReady, WorkerSettings
from ctrlspeak.supervisor import Backoff, Supervisor
from ctrlspeak.vad import EnergyVad

REF = ModelRef("m", "file", path="/x.nemo")


class FakeClient:
    """A worker client whose boot the test may hold back (``auto_boot = False``) and release."""

    instances: list[FakeClient] = []
    auto_boot = True
    hang = False  # accept requests, never answer them

    def __init__(self, settings: WorkerSettings, on_progress=None, on_exit=None) -> None:
        self.settings, self._on_exit = settings, on_exit
        self.ready: Future = Future()
        self.submitted: list[str] = []
        self.pid = 4000 + len(FakeClient.instances)
        self.closed = threading.Event()
        self._auto = FakeClient.auto_boot
        FakeClient.instances.append(self)

    def start(self) -> None:
        if self._auto:
            threading.Timer(0.01, self.boot).start()

    def boot(self) -> None:
        self.ready.set_result(WorkerReady(self.settings.model.name, "ctc", "cpu", "float32", 1, 0.1, 0.1, 1, 1))

    def submit(self, audio, options=None, request_id=None) -> Future:
        assert self.ready.done() and not self.closed.is_set(), "sent to a worker that is not ready"
        self.submitted.append(request_id)
        f: Future = Future()
        if not FakeClient.hang:
            t = Timings(audio.size / 16000, 0, 0.01, 0.01, 0.02)
            f.set_result(Transcript(request_id, f"words from worker {self.pid}", t, self.settings.model.name))
        return f

    def load_model(self, ref):
        f: Future = Future()
        f.set_result(WorkerReady(ref.name, "ctc", "cpu", "float32", 1, 0.1, 0.1, 1, 1))
        return f

    def kill(self) -> None:
        self.close()

    def close(self, timeout: float = 10.0) -> None:
        if not self.closed.is_set():
            self.closed.set()
            self._on_exit(0)


@pytest.fixture(autouse=True)
def _reset(monkeypatch):
    FakeClient.instances, FakeClient.auto_boot, FakeClient.hang = [], True, False
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)


def _wait(cond, timeout: float = 5.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


# -- the supervisor -------------------------------------------------------------------
def _sup() -> Supervisor:
    sup = Supervisor(lambda ref: WorkerSettings(model=ref), REF, client_factory=FakeClient, backoff=Backoff(0.01, 0.05))
    sup.start()
    _wait(lambda: sup.ready is not None, what="the first worker")
    return sup


def test_supervisor_unload_stops_the_worker_without_a_restart_and_submit_reloads():
    sup = _sup()
    first = FakeClient.instances[0]
    assert sup.unload()
    _wait(first.closed.is_set, what="the unloaded worker to be closed")
    time.sleep(0.1)  # a crash would be restarted after 10 ms: an unload must not be
    assert len(FakeClient.instances) == 1 and sup.ready is None and sup.pid is None and sup.unloaded
    assert sup.submit(np.zeros(1600, np.float32)).result(timeout=5).text == "words from worker 4001"
    assert len(FakeClient.instances) == 2 and not sup.unloaded
    sup.close()


def test_supervisor_holds_requests_until_the_reloaded_worker_is_ready():
    sup = _sup()
    assert sup.unload()
    FakeClient.auto_boot = False
    assert sup.reload() and not sup.reload(), "a second reload starts nothing"
    f = sup.submit(np.zeros(1600, np.float32))
    time.sleep(0.1)
    assert not f.done() and FakeClient.instances[1].submitted == []
    FakeClient.instances[1].boot()
    assert f.result(timeout=5).text == "words from worker 4001"
    sup.close()


def test_supervisor_refuses_to_unload_with_a_request_pending_or_no_ready_worker():
    FakeClient.hang = True
    sup = _sup()
    sup.submit(np.zeros(1600, np.float32))
    assert not sup.unload()
    assert not FakeClient.instances[0].closed.is_set() and sup.ready is not None
    sup.close()
    FakeClient.auto_boot = False
    booting = Supervisor(lambda ref: WorkerSettings(model=ref), REF, client_factory=FakeClient)
    booting.start()
    assert not booting.unload(), "a worker still loading is not unloaded"
    booting.close()


def test_supervisor_refuses_to_unload_during_an_in_place_switch():
    sup = _sup()
    loading: Future = Future()
    FakeClient.instances[0].load_model = lambda ref: loading
    sup.switch(ModelRef("other", "file", path="/o.nemo"))
    assert not sup.unload()
    loading.set_result(WorkerReady("other", "ctc", "cpu", "float32", 1, 0.1, 0.1, 1, 1))
    assert sup.unload() and sup.model.name == "other"
    sup.close()


def test_supervisor_switch_while_unloaded_starts_the_new_model():
    sup = _sup()
    assert sup.unload()
    other = ModelRef("other", "file", path="/o.nemo")
    assert sup.switch(other).result(timeout=5).model == "other"
    assert sup.model is other and not sup.unloaded and sup.ready is not None
    sup.close()


# -- the daemon -----------------------------------------------------------------------
class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeRecorder:
    def begin(self) -> np.ndarray:
        return np.zeros(0, np.float32)

    def end(self) -> None:
        pass

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass


@dataclass
class _Delivery:
    pasted: bool = True
    method: str = "paste"
    detail: str = ""
    inserted_at: float | None = None


class FakeOutput:
    mode = "paste"
    window: str | None = None  # what target() says has the focus

    def __init__(self) -> None:
        self.texts: list[str] = []

    def target(self) -> str | None:
        return self.window

    def deliver(self, text: str) -> _Delivery:
        self.texts.append(text)
        return _Delivery()


def _daemon(monkeypatch, minutes: float, clock=time.monotonic, model=REF):
    monkeypatch.setattr(daemon_mod, "Supervisor", functools.partial(Supervisor, client_factory=FakeClient))
    cfg = Config(keep_alive_minutes=minutes, journal=False, history=False, sounds=False, tray=False, notify="off")
    d = daemon_mod.Daemon(cfg, console=False, hotkey=False, tray=False, clock=clock)
    events: list = []
    d.status.add("test", events.append)
    d._vad, d._recorder, d._output = EnergyVad(), FakeRecorder(), FakeOutput()
    d._start_worker(model)
    return d, events


def _pump(d, until, timeout: float = 5.0) -> None:
    """What the main loop does, one event at a time, until ``until()``."""
    deadline = time.monotonic() + timeout
    while not until():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out; state {d._snapshot}")
        try:
            d._dispatch(d._inbox.get(timeout=0.01))
        except queue.Empty:
            pass
        d._keep_alive_tick()


def _speech(seconds: float = 1.0) -> np.ndarray:
    rng = np.random.default_rng(0)
    return (0.2 * rng.standard_normal(int(seconds * 16000))).astype(np.float32)


def _dictate(d, clock=None) -> str:
    """start, audio, stop as the control socket and the recorder post them, through the loop's steps."""
    delivered = len(d._output.texts)
    d._inbox.put(daemon_mod._Command({"cmd": "start"}, Future()))
    _pump(d, lambda: d._session is not None)
    if clock is not None:
        clock.now += 1.0
    d._inbox.put(daemon_mod._Audio(_speech()))
    d._inbox.put(daemon_mod._Command({"cmd": "stop"}, Future()))
    _pump(d, lambda: len(d._output.texts) > delivered and d._snapshot.get("worker_ready"))
    return d._output.texts[-1]


def test_the_daemon_unloads_after_the_idle_time(monkeypatch):
    clock = FakeClock()
    d, events = _daemon(monkeypatch, 2.0, clock)
    _pump(d, lambda: d._snapshot["state"] == "ready")
    assert d._keepalive.wait_s(clock()) == pytest.approx(120.0), "the loop blocks until the deadline"
    clock.now += 119.0
    d._keep_alive_tick()
    assert not d._unloaded and not FakeClient.instances[0].closed.is_set()
    clock.now += 1.0
    d._keep_alive_tick()
    _wait(FakeClient.instances[0].closed.is_set, what="the worker to be stopped")
    assert d._snapshot["state"] == "idle" and d._snapshot["unloaded"] is True
    assert d._snapshot["worker_ready"] is False and d._snapshot["worker_pid"] is None
    assert events[-1].state == "idle" and "unloaded" in events[-1].message and "free memory" in events[-1].message
    assert d._keepalive.wait_s(clock()) is None, "unloaded: the loop blocks with no timeout"
    d._worker.close()


def test_never_unloads_during_a_recording_or_while_transcribing(monkeypatch):
    clock = FakeClock()
    d, _ = _daemon(monkeypatch, 1.0, clock)
    _pump(d, lambda: d._snapshot["state"] == "ready")
    FakeClient.hang = True  # the transcription stays pending
    assert d.start_recording("test") is None
    clock.now += 600.0
    d._on_audio(_speech())
    d._keep_alive_tick()
    assert d._keepalive.wait_s(clock()) is None
    d.stop_recording()
    clock.now += 600.0
    d._keep_alive_tick()
    assert d._finishing and not d._unloaded and d._worker.pid == 4000
    assert not FakeClient.instances[0].closed.is_set()
    # the daemon's own guard aside, the supervisor refuses too while a request is pending
    assert not d._worker.unload()
    d._worker.close()


def test_the_idle_count_restarts_after_a_dictation(monkeypatch):
    clock = FakeClock()
    d, _ = _daemon(monkeypatch, 1.0, clock)
    _pump(d, lambda: d._snapshot["state"] == "ready")
    clock.now += 50.0
    assert _dictate(d, clock) == "words from worker 4000"
    clock.now += 30.0  # 81 s since the daemon first went idle, 30 s since the dictation
    d._keep_alive_tick()
    assert not d._unloaded
    assert d._keepalive.wait_s(clock()) == pytest.approx(30.0)
    clock.now += 30.0
    d._keep_alive_tick()
    assert d._unloaded
    d._worker.close()


def _unloaded_daemon(monkeypatch):
    """A daemon with a one-minute keep-alive, ready, then idle for that minute: unloaded."""
    clock = FakeClock()
    d, events = _daemon(monkeypatch, 1.0, clock)
    _pump(d, lambda: d._snapshot["state"] == "ready")
    clock.now += 60.0
    d._keep_alive_tick()
    assert d._unloaded
    return d, events


def test_the_next_start_reloads_and_the_recording_made_meanwhile_is_delivered(monkeypatch):
    d, events = _unloaded_daemon(monkeypatch)
    assert len(FakeClient.instances) == 1
    FakeClient.auto_boot = False  # the reload takes its time: the test says when it is done
    n = len(events)
    d._on_command(daemon_mod._Command({"cmd": "start"}, reply := Future()))
    assert reply.result(timeout=1)["state"] == "recording"
    assert len(FakeClient.instances) == 2, "the tap started a worker at once"
    d._on_audio(_speech(1.5))
    d.stop_recording()
    time.sleep(0.1)
    assert FakeClient.instances[1].submitted == [] and d._finishing, "the segment waits for the worker"
    assert d._snapshot["state"] == "transcribing"
    FakeClient.instances[1].boot()
    _pump(d, lambda: d._output.texts and d._snapshot.get("worker_ready"))
    assert d._output.texts == ["words from worker 4001"]
    assert FakeClient.instances[1].submitted and FakeClient.instances[0].submitted == []
    states = [e.state for e in events[n:]]
    # no loading/ready flicker over the recording (the fake answers before its ready event is handled)
    assert states[:3] == ["recording", "transcribing", "done"] and set(states[3:]) <= {"ready"}, states
    assert d._snapshot["worker_ready"] and not d._snapshot["unloaded"]
    d._worker.close()


def test_models_use_while_unloaded_loads_the_new_model(monkeypatch):
    d, _ = _unloaded_daemon(monkeypatch)
    d._on_command(daemon_mod._Command({"cmd": "model", "name": "tiny-en"}, reply := Future()))
    assert reply.result(timeout=1) == {"switching": "tiny-en"}
    _pump(d, lambda: d.worker_state.switching_to is None and d.worker_state.ready is not None and d._snapshot["state"] == "ready")
    assert d._model_name() == "tiny-en" and not d._unloaded and len(FakeClient.instances) == 2
    assert _dictate(d) == "words from worker 4001"
    d._worker.close()


def test_zero_keeps_the_model_loaded(monkeypatch):
    clock = FakeClock()
    d, _ = _daemon(monkeypatch, 0.0, clock)
    _pump(d, lambda: d._snapshot["state"] == "ready")
    clock.now += 1e7
    d._keep_alive_tick()
    assert d._keepalive.wait_s(clock()) is None
    assert not d._unloaded and not FakeClient.instances[0].closed.is_set()
    d._worker.close()


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


def test_the_main_loop_wakes_by_itself_to_unload_and_does_not_poll(monkeypatch):
    d, _ = _daemon(monkeypatch, 0.004)  # 0.24 s, real clock
    d._inbox = inbox = _CountingQueue()  # the worker's callbacks post here from now on
    loop = threading.Thread(target=d._loop, daemon=True)
    loop.start()
    _wait(lambda: d._unloaded, timeout=10, what="the unload")
    _wait(FakeClient.instances[0].closed.is_set, what="the worker to be stopped")
    # the loop goes round once more after the unload; count from when it blocks for good
    _wait(inbox.blocked_for_good.is_set, what="the loop to block with nothing due")
    gets = inbox.gets
    time.sleep(0.5)
    assert inbox.gets == gets, "an unloaded, idle daemon blocks: no wake-ups"
    # the ready worker's state and its announcement, the unload's state, one deadline, a last round
    assert gets <= 6, f"{gets} wake-ups for one ready worker, one unload and one deadline: polling?"
    # and it is still usable: a tap reloads, the text comes through
    d._force = True
    inbox.put(daemon_mod._Command({"cmd": "cancel"}, Future()))
    loop.join(5)
    assert not loop.is_alive()
    d._force = False
    assert _dictate(d) == "words from worker 4001"
    d._worker.close()
