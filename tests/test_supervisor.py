"""Supervisor policy with a fake worker client (the real worker is in tests/integration)."""
from __future__ import annotations

import threading
import time
from concurrent.futures import Future

import numpy as np
import pytest

from ctrlspeak import errors
from ctrlspeak.ipc import ModelRef, Timings, Transcript, WorkerReady, WorkerSettings
from ctrlspeak.supervisor import Backoff, SpeedEstimate, Supervisor

REF = ModelRef("m", "file", path="/x.nemo")


def _ready(name: str = "m") -> WorkerReady:
    return WorkerReady(name, "ctc", "cpu", "float32", 1, 0.1, 0.1, 1, 1)


class FakeClient:
    """Behaves like WorkerClient; the test decides how each instance boots and answers."""

    instances: list[FakeClient] = []
    script: list[str] = []  # per instance: "ok", "fail-boot", "hang"

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
        if self.mode == "fail-boot":
            def fail():
                self.ready.set_exception(errors.WorkerBootError("boom"))
                self._die(3)
            threading.Timer(0.01, fail).start()
        else:
            threading.Timer(0.01, lambda: self.ready.set_result(_ready(self.settings.model.name))).start()

    def submit(self, audio, options=None, request_id=None):
        f: Future = Future()
        self.submitted.append(request_id)
        if self.dead:
            f.set_exception(errors.WorkerCrashed("dead"))
            return f
        self.pending[request_id] = f
        if self.mode == "ok":
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
    FakeClient.instances, FakeClient.script = [], []


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


def test_speed_estimate_scales_with_audio_and_learns():
    s = SpeedEstimate(initial_rtfx=2.0, margin_s=10, factor=5)
    assert s.deadline_s(10) == pytest.approx(10 + 25)
    s.observe(10.0, 0.1)  # 100x real time
    assert s.deadline_s(10) == pytest.approx(10 + 0.5)


def test_requests_wait_for_the_worker_then_complete():
    sup, _ = _sup()
    sup.start()
    f = sup.submit(np.zeros(16000, np.float32))
    assert f.result(timeout=5).text.startswith("text")
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
