"""Supervisor policy with a fake worker client (the real worker is in tests/integration)."""
from __future__ import annotations

import threading
import time
from concurrent.futures import Future

import numpy as np
import pytest

from ctrlspeak import errors
from ctrlspeak.ipc import ModelRef, Timings, Transcript, WorkerReady, WorkerSettings
from ctrlspeak.supervision.restart_policy import RestartPolicy, give_up_error
from ctrlspeak.supervision.supervisor import Backoff, SpeedEstimate, Supervisor

REF = ModelRef("m", "file", path="/x.nemo")


def _ready(name: str = "m") -> WorkerReady:
    return WorkerReady(name, "ctc", "cpu", "float32", 1, 0.1, 0.1, 1, 1)


class FakeClient:
    """Behaves like WorkerClient; the test decides how each instance boots and answers."""

    instances: list[FakeClient] = []
    script: list[str] = []  # per instance: "ok", "fail-boot", "hang", "manual" (the test calls boot())
    sync_boot = False  # boot inside start() instead of a moment later on a timer thread

    def __init__(self, settings, on_progress=None, on_exit=None):
        self.settings, self._on_exit = settings, on_exit
        self.ready: Future = Future()
        self.mode = FakeClient.script.pop(0) if FakeClient.script else "ok"
        self.pending: dict[str, Future] = {}
        self.submitted: list[str] = []
        self.pid = 1000 + len(FakeClient.instances)
        self.dead = False
        FakeClient.instances.append(self)

    def start(self):
        if self.mode == "manual":
            return
        if FakeClient.sync_boot:
            self.boot()
        else:
            threading.Timer(0.01, self.boot).start()

    def boot(self):
        if self.mode == "fail-boot":
            self.ready.set_exception(errors.WorkerBootError("boom"))
            self._die(3)
        else:
            self.ready.set_result(_ready(self.settings.model.name))

    def submit(self, audio, options=None, request_id=None):
        f: Future = Future()
        self.submitted.append(request_id)
        if not self.ready.done() or self.ready.exception() is not None:
            # the real worker would queue it behind a boot that may never finish: the
            # supervisor must hold requests until the worker is ready
            f.set_exception(AssertionError(f"{request_id} submitted before the worker was ready"))
            return f
        if self.dead:
            f.set_exception(errors.WorkerCrashed("dead"))
            return f
        self.pending[request_id] = f
        if self.mode in ("ok", "manual"):
            t = Timings(audio.size / 16000, 0, 0.01, 0.01, 0.02)
            f.set_result(Transcript(request_id, f"text {request_id.split('.')[0][:4]}", t, "m"))
            self.pending.pop(request_id)
        return f

    def load_model(self, ref):
        f: Future = Future()
        if ref.path == "/bad.nemo":
            f.set_exception(errors.ModelLoadError("corrupt"))
        else:
            f.set_result(_ready(ref.name))
        return f

    def kill(self):
        self._die(-9)

    def _die(self, code):
        if self.dead:
            return
        self.dead = True
        for f in self.pending.values():
            f.set_exception(errors.WorkerCrashed("killed"))
        self.pending.clear()
        self._on_exit(code)

    def close(self, timeout=10.0):
        self.dead = True


@pytest.fixture(autouse=True)
def reset_fake():
    FakeClient.instances, FakeClient.script, FakeClient.sync_boot = [], [], False


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _sup(**kw):
    events = []
    sup = Supervisor(lambda ref: WorkerSettings(model=ref), REF, client_factory=FakeClient,
                     backoff=Backoff(0.01, 0.05), on_trouble=lambda e, final: events.append((e.code, final)),
                     **kw)
    return sup, events


def test_backoff_doubles_up_to_the_cap_and_resets():
    b = Backoff(1, 30)
    assert [b.next() for _ in range(7)] == [1, 2, 4, 8, 16, 30, 30]
    b.reset()
    assert b.next() == 1


def test_the_restart_policy_gives_up_at_once_on_a_permanent_error_else_after_the_limit():
    assert give_up_error(errors.ModelNotCached("x"), 1, 3).code == errors.ModelNotCached("x").code
    crash = errors.WorkerCrashed("died")
    assert give_up_error(crash, 2, 3) is None
    assert give_up_error(crash, 3, 3).code == errors.WorkerBootError("x").code
    download = give_up_error(errors.ModelDownloadError("offline", hint="check the network"), 3, 3)
    assert isinstance(download, errors.ModelDownloadError) and download.hint == "check the network"
    policy = RestartPolicy(Backoff(1, 4), max_boot_failures=2)
    assert policy.boot_failed(crash) is None and [policy.next_delay() for _ in range(3)] == [1, 2, 4]
    assert policy.restarts == 3 and policy.boot_failed(crash) is not None
    policy.reset()
    assert policy.boot_failures == 0 and policy.next_delay() == 1


def test_speed_estimate_scales_with_audio_and_learns():
    s = SpeedEstimate(initial_rtfx=2.0, margin_s=10, factor=5)
    assert s.deadline_s(10) == pytest.approx(10 + 25)
    s.observe(10.0, 0.1)  # 100x real time
    assert s.deadline_s(10) == pytest.approx(10 + 0.5)


def test_requests_wait_for_the_worker_then_complete():
    FakeClient.script = ["manual"]
    sup, _ = _sup()
    sup.start()
    f = sup.submit(np.zeros(16000, np.float32))
    assert not f.done() and FakeClient.instances[0].submitted == [], "held until the worker is ready"
    FakeClient.instances[0].boot()
    assert f.result(timeout=5).text.startswith("text")
    assert len(FakeClient.instances[0].submitted) == 1
    sup.close()


def test_a_crash_restarts_the_worker_and_resends_in_flight_requests():
    FakeClient.script = ["hang", "ok"]  # the first worker never answers
    sup, events = _sup()
    sup.start()
    f = sup.submit(np.zeros(16000, np.float32))
    time.sleep(0.1)
    FakeClient.instances[0].kill()
    assert f.result(timeout=5).text.startswith("text")
    assert len(FakeClient.instances) == 2 and FakeClient.instances[1].submitted
    assert ("ERR_WORKER_CRASHED", False) in events
    sup.close()


def test_repeated_boot_failures_give_up_with_a_stable_code_and_fail_requests():
    FakeClient.script = ["fail-boot"] * 5
    sup, events = _sup(max_boot_failures=3)
    sup.start()
    f = sup.submit(np.zeros(16000, np.float32))
    with pytest.raises(errors.WorkerBootError):
        f.result(timeout=5)
    time.sleep(0.2)
    assert len(FakeClient.instances) == 3, "no respawn loop after giving up"
    assert events[-1] == ("ERR_WORKER_BOOT", True)
    # a switch to another model starts afresh
    FakeClient.script = ["ok"]
    assert sup.switch(ModelRef("other", "file", path="/o.nemo")).result(timeout=5).model == "other"
    assert sup.submit(np.zeros(16000, np.float32)).result(timeout=5)
    sup.close()


def test_a_hang_kills_and_retries_once_then_fails_with_err_worker_hung():
    FakeClient.script = ["hang", "hang", "ok"]
    sup, events = _sup(speed=SpeedEstimate(initial_rtfx=100, margin_s=0.2, factor=1))
    sup.start()
    f = sup.submit(np.zeros(1600, np.float32))
    with pytest.raises(errors.WorkerHung):
        f.result(timeout=10)
    assert [e for e in events if e[0] == "ERR_WORKER_HUNG"]
    sup.close()


def test_a_hang_then_success_on_retry():
    FakeClient.script = ["hang", "ok"]
    sup, _ = _sup(speed=SpeedEstimate(initial_rtfx=100, margin_s=0.2, factor=1))
    sup.start()
    assert sup.submit(np.zeros(1600, np.float32)).result(timeout=10).text.startswith("text")
    sup.close()


def test_a_failed_switch_keeps_the_old_model():
    sup, _ = _sup()
    sup.start()
    sup.submit(np.zeros(1600, np.float32)).result(timeout=5)
    with pytest.raises(errors.ModelLoadError):
        sup.switch(ModelRef("bad", "file", path="/bad.nemo")).result(timeout=5)
    assert sup.model is REF and sup.ready is not None
    sup.close()


# -- deadlines on a fake clock ----------------------------------------------------------
def test_backoff_restarts_fall_due_on_the_clock_not_before():
    FakeClient.script, FakeClient.sync_boot = ["fail-boot"] * 3 + ["ok"], True
    clock = FakeClock()
    sup = Supervisor(lambda ref: WorkerSettings(model=ref), REF, client_factory=FakeClient,
                     backoff=Backoff(1, 30), max_boot_failures=5, clock=clock)
    sup.start()
    assert len(FakeClient.instances) == 1 and sup.check_deadlines() == 1.0
    for restart_at, next_at in ((1.0, 3.0), (3.0, 7.0)):
        clock.now = restart_at - 0.01
        assert sup.check_deadlines() == restart_at and len(FakeClient.instances) == sup.restarts
        clock.now = restart_at
        assert sup.check_deadlines() == next_at, "the delay doubles: 1 s, 2 s, 4 s"
    clock.now = 7.0
    assert sup.check_deadlines() is None and len(FakeClient.instances) == 4 and sup.ready is not None
    sup.close()


def test_a_hang_is_a_deadline_from_the_audio_length():
    FakeClient.script, FakeClient.sync_boot = ["hang", "hang", "ok"], True
    clock = FakeClock()
    sup, events = _sup(speed=SpeedEstimate(initial_rtfx=1, margin_s=10, factor=1), clock=clock)
    sup.start()
    f = sup.submit(np.zeros(16000, np.float32))  # 1 s of audio: due 10 + 1 s after sending
    assert sup.check_deadlines() == 11.0
    clock.now = 10.99
    sup.check_deadlines()
    assert not FakeClient.instances[0].dead and not events
    clock.now = 11.0
    assert sup.check_deadlines() == pytest.approx(11.01), "killed; restarted after the backoff"
    assert FakeClient.instances[0].dead and ("ERR_WORKER_HUNG", False) in events and not f.done()
    clock.now = 11.01
    assert sup.check_deadlines() == pytest.approx(22.01), "resent to the new worker with a fresh deadline"
    assert len(FakeClient.instances) == 2 and FakeClient.instances[1].submitted
    clock.now = 22.01
    sup.check_deadlines()
    with pytest.raises(errors.WorkerHung):
        f.result(timeout=0)
    sup.close()


def test_an_answer_clears_its_deadline():
    FakeClient.sync_boot = True
    clock = FakeClock()
    sup, _ = _sup(clock=clock)
    sup.start()
    sup.submit(np.zeros(16000, np.float32)).result(timeout=0)
    assert sup.check_deadlines() is None
    clock.now = 1e6
    sup.check_deadlines()
    assert len(FakeClient.instances) == 1
    sup.close()


# -- the published WorkerState ----------------------------------------------------------
def _watched(**kw):
    states: list = []
    sup, events = _sup(on_state=states.append, **kw)
    return sup, states


def _phases(states) -> list[str]:
    return [s.phase for s in states]


def test_worker_state_from_start_to_ready_to_closed():
    FakeClient.sync_boot = True
    sup, states = _watched()
    assert sup.state.phase == "starting" and sup.state.model is REF
    sup.start()
    assert _phases(states) == ["starting", "ready"]
    ready = sup.state
    assert ready is states[-1] and ready.ready is not None and ready.pid == FakeClient.instances[0].pid
    assert ready.first_ready and ready.model_name == "m" and ready.error is None
    assert [s.version for s in states] == sorted({s.version for s in states}), "versions grow"
    sup.close()
    assert sup.state.phase == "closed" and sup.state.pid is None and sup.state.ready is None


def test_worker_state_through_a_crash_and_restart():
    FakeClient.sync_boot = True
    sup, states = _watched()
    sup.start()
    FakeClient.instances[0].kill()
    assert sup.state.phase == "restarting" and sup.state.ready is None
    assert sup.state.error is not None and sup.state.error.code == "ERR_WORKER_CRASHED"
    deadline = time.monotonic() + 5
    while sup.state.phase != "ready" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _phases(states) == ["starting", "ready", "restarting", "restarting", "ready"]
    assert sup.state.booted_by == "restart" and not sup.state.first_ready and sup.state.error is None
    assert sup.state.pid == FakeClient.instances[1].pid
    sup.close()


def test_worker_state_gives_up_then_a_switch_and_a_retry_start_afresh():
    FakeClient.script, FakeClient.sync_boot = ["fail-boot"], True
    sup, states = _watched(max_boot_failures=1)
    sup.start()
    assert sup.state.phase == "gave_up" and sup.state.gave_up is not None
    assert sup.state.gave_up.code == "ERR_WORKER_BOOT"
    other = ModelRef("other", "file", path="/o.nemo")
    sup.switch(other).result(timeout=5)
    assert _phases(states)[-2:] == ["switching", "ready"]
    assert states[-2].switching_to is other and states[-2].model is REF, "the old model until the new is ready"
    assert sup.state.model is other and sup.state.switching_to is None
    assert not sup.state.first_ready, "a ready that answers a switch is not the first"
    sup.close()

    FakeClient.instances, FakeClient.script = [], ["fail-boot", "ok"]
    sup, states = _watched(max_boot_failures=1)
    sup.start()
    sup.retry()
    assert _phases(states) == ["starting", "gave_up", "restarting", "ready"]
    assert sup.state.booted_by == "retry" and sup.state.first_ready and sup.state.gave_up is None
    sup.close()


def test_worker_state_of_an_in_place_switch_and_a_failed_one():
    FakeClient.sync_boot = True
    sup, states = _watched()
    sup.start()
    other = ModelRef("other", "file", path="/o.nemo")
    sup.switch(other).result(timeout=5)
    assert _phases(states)[-2:] == ["switching", "ready"]
    assert states[-2].ready is not None, "the old model answers meanwhile"
    assert sup.state.model is other and sup.state.switching_to is None
    with pytest.raises(errors.ModelLoadError):
        sup.switch(ModelRef("bad", "file", path="/bad.nemo")).result(timeout=5)
    assert sup.state.phase == "ready" and sup.state.model is other and sup.state.switching_to is None
    sup.close()


def test_worker_state_unloaded_then_reloading():
    FakeClient.sync_boot = True
    sup, states = _watched()
    sup.start()
    assert sup.unload()
    assert sup.state.phase == "unloaded" and sup.state.pid is None and sup.state.ready is None
    assert sup.reload()
    assert _phases(states)[-3:] == ["unloaded", "reloading", "ready"]
    assert sup.state.booted_by == "reload" and sup.state.pid == FakeClient.instances[1].pid
    sup.close()


def test_a_hang_is_published_as_restarting_before_the_worker_exits():
    FakeClient.script, FakeClient.sync_boot = ["hang", "ok"], True
    clock = FakeClock()
    seen: list = []
    sup = Supervisor(lambda ref: WorkerSettings(model=ref), REF, client_factory=FakeClient, clock=clock,
                     backoff=Backoff(0.01, 0.05), speed=SpeedEstimate(initial_rtfx=1, margin_s=1, factor=1),
                     on_trouble=lambda e, final: seen.append((e.code, sup.state.phase, sup.state.ready)))
    sup.start()
    sup.submit(np.zeros(16000, np.float32))
    clock.now = 100.0
    sup.check_deadlines()
    assert seen[0] == ("ERR_WORKER_HUNG", "restarting", None), "state first, then the trouble"
    sup.close()
