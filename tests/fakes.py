"""The fakes at the daemon's edges, one set for every unit test: a worker client (and the
factory a Supervisor takes), a recorder, an output, a clock, and helpers that drive the daemon
through its events. All state is per instance: one test's workers never leak into the next.

The real worker is in tests/integration; the real desktop in tests/desktop.
"""
from __future__ import annotations

import functools
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ctrlspeak.daemon import core as daemon_mod
from ctrlspeak.daemon import worker_link
from ctrlspeak import errors
from ctrlspeak.config import Config
from ctrlspeak.ipc import ModelRef, Progress, Timings, Transcript, WorkerReady, WorkerSettings
from ctrlspeak.supervision.supervisor import Supervisor
from ctrlspeak.audio.vad import EnergyVad

REF = ModelRef("m", "file", path="/x.nemo")


def ready_message(name: str = "m", stream_chunks_ms: tuple[int, ...] = ()) -> WorkerReady:
    return WorkerReady(name, "ctc", "cpu", "float32", 1, 0.1, 0.1, 1, 1, stream_chunks_ms=stream_chunks_ms,
                       params=4_000_000)


class FakeClient:
    """Behaves like WorkerClient: boots (by itself, or when the test calls :meth:`boot`),
    answers ``words from worker <pid>`` (or what ``answer()`` says) or never (``hang``), and
    dies on :meth:`kill`.
    Sending a request before it is ready fails the test, as the real one would misbehave."""

    def __init__(self, settings: WorkerSettings, on_exit: Callable[[int], None] | None, *, pid: int,
                 auto_boot: bool = True, hang: bool = False, fail_boot: bool = False,
                 answer: Callable[[], str | errors.CtrlspeakError | None] = lambda: None,
                 on_progress: Callable[[Progress], None] | None = None,
                 stream_chunks_ms: tuple[int, ...] = ()) -> None:
        self.settings, self._on_exit = settings, on_exit
        self.stream_chunks_ms = stream_chunks_ms  # what its model streams at (WorkerReady)
        #: (samples, options) of every request, in order
        self.requests: list[tuple[int, Any]] = []
        self.progress: Callable[[Progress], None] = on_progress or (lambda p: None)  # as the worker reports it
        self.ready: Future = Future()
        self.submitted: list[str] = []
        self.pending: dict[str, Future] = {}
        self.pid = pid
        self.closed = threading.Event()
        self.hang = hang
        self._answer = answer
        self._auto, self._fail_boot = auto_boot, fail_boot

    def start(self) -> None:
        if self._fail_boot:
            threading.Timer(0.01, self._boot_failed).start()
        elif self._auto:
            threading.Timer(0.01, self.boot).start()

    def boot(self) -> None:
        self.ready.set_result(ready_message(self.settings.model.name, self.stream_chunks_ms))

    def _boot_failed(self) -> None:
        self.ready.set_exception(errors.WorkerBootError("boom"))
        self._die(3)

    def submit(self, audio: np.ndarray, options: Any = None, request_id: str | None = None) -> Future:
        assert self.ready.done() and not self.closed.is_set(), "sent to a worker that is not ready"
        self.submitted.append(request_id)
        self.requests.append((audio.size, options))
        f: Future = Future()
        if self.hang:
            self.pending[request_id] = f
        else:
            t = Timings(audio.size / 16000, 0, 0.01, 0.01, 0.02)
            text = self._answer()
            if isinstance(text, errors.CtrlspeakError):
                f.set_exception(text)  # the worker could not transcribe this segment
            else:
                f.set_result(Transcript(request_id, f"words from worker {self.pid}" if text is None else text, t,
                                        self.settings.model.name))
        return f

    def load_model(self, ref: ModelRef) -> Future:
        f: Future = Future()
        f.set_result(ready_message(ref.name))
        return f

    def kill(self) -> None:
        self._die(-9)

    def _die(self, code: int) -> None:
        if self.closed.is_set():
            return
        self.closed.set()
        for f in self.pending.values():
            f.set_exception(errors.WorkerCrashed("killed"))
        self.pending.clear()
        if self._on_exit is not None:
            self._on_exit(code)

    def close(self, timeout: float = 10.0) -> None:
        self._die(0)


class FakeWorkers:
    """The ``client_factory`` a Supervisor takes: makes :class:`FakeClient` s (pids 4000, 4001...)
    with this factory's settings at the time, and keeps them in ``instances``."""

    def __init__(self, *, auto_boot: bool = True, hang: bool = False) -> None:
        self.instances: list[FakeClient] = []
        self.auto_boot = auto_boot  # False: the test calls boot() on each new worker
        self.hang = hang  # new workers accept requests and never answer them
        self.fail_boots = 0  # this many next workers fail to boot
        self.stream_chunks_ms: tuple[int, ...] = ()  # the chunk sizes new workers' models stream at
        #: what every worker (the running one included) answers next: a text, an error (the segment
        #: fails), or None for ``words from worker <pid>``
        self.answer: Callable[[], str | errors.CtrlspeakError | None] = lambda: None

    def __call__(self, settings: WorkerSettings, on_progress: Any = None,
                 on_exit: Callable[[int], None] | None = None) -> FakeClient:
        fail = self.fail_boots > 0
        self.fail_boots -= int(fail)
        client = FakeClient(settings, on_exit, pid=4000 + len(self.instances), auto_boot=self.auto_boot,
                            hang=self.hang, fail_boot=fail, answer=lambda: self.answer(), on_progress=on_progress,
                            stream_chunks_ms=self.stream_chunks_ms)
        self.instances.append(client)
        return client


def use_fake_workers(monkeypatch: Any, workers: FakeWorkers | None = None) -> FakeWorkers:
    """Make the daemon's Supervisor start ``workers`` instead of real worker processes."""
    workers = workers or FakeWorkers()
    monkeypatch.setattr(worker_link, "Supervisor", functools.partial(Supervisor, client_factory=workers))
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    return workers


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
class Delivery:
    pasted: bool = True
    method: str = "paste"
    detail: str = ""
    inserted_at: float | None = None


@dataclass
class FakeOutput:
    """Records what is delivered; ``deliver`` answers ``result`` (or raises it, an error)."""

    mode: str = "paste"
    window: str | None = None  # what target() says has the focus
    result: Delivery | errors.CtrlspeakError = field(default_factory=Delivery)
    texts: list[str] = field(default_factory=list)

    def target(self) -> str | None:
        return self.window

    def deliver(self, text: str) -> Delivery:
        self.texts.append(text)
        if isinstance(self.result, errors.CtrlspeakError):
            raise self.result
        return self.result


def make_daemon(keep_alive_minutes: float = 0.0, clock: Callable[[], float] = time.monotonic,
                model: ModelRef = REF, **cfg: Any) -> tuple[daemon_mod.Daemon, list]:
    """A daemon with fakes at its edges (call :func:`use_fake_workers` first) and its worker
    starting; returns it and the list its status events go to."""
    if not isinstance(worker_link.Supervisor, functools.partial):  # never a real worker process here
        raise RuntimeError("make_daemon needs fake workers: take the `workers` fixture (or use_fake_workers)")
    # the model's text as it is (these are about delivery; test_text_daemon.py covers the text
    # pipeline's defaults, capitals and a period for a model that writes none)
    base = dict(keep_alive_minutes=keep_alive_minutes, journal=False, history=False, sounds=False, tray=False,
                notify="off", auto_capitalize="off", trailing_period="off")
    d = daemon_mod.Daemon(Config(**{**base, **cfg}), console=False, hotkey=False, tray=False, clock=clock)
    events: list = []
    d.status.add("test", events.append)
    d._vad, d._mic.source, d.parts.output = EnergyVad(), FakeRecorder(), FakeOutput()
    d._start_worker(model)
    return d, events


def wait(cond: Callable[[], Any], timeout: float = 5.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


def pump(d: daemon_mod.Daemon, until: Callable[[], Any], timeout: float = 5.0) -> None:
    """What the main loop does, one event at a time, until ``until()``."""
    deadline = time.monotonic() + timeout
    while not until():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out; state {d.snapshot()}")
        try:
            d._dispatch(d._inbox.get(timeout=0.01))
        except queue.Empty:
            pass
        d._keep_alive_tick()


def speech(seconds: float = 1.0) -> np.ndarray:
    rng = np.random.default_rng(0)
    return (0.2 * rng.standard_normal(int(seconds * 16000))).astype(np.float32)


def command(d: daemon_mod.Daemon, cmd: str, **args: Any) -> Future:
    """Post a control command as the socket's handler does; the future gets the reply."""
    reply: Future = Future()
    d.post(daemon_mod.Command({"cmd": cmd, **args}, reply))
    return reply


def dictate(d: daemon_mod.Daemon, clock: FakeClock | None = None) -> str:
    """start, audio, stop as the control socket and the recorder post them, through the loop's steps."""
    delivered = len(d.parts.output.texts)
    command(d, "start")
    pump(d, lambda: d.recording)
    if clock is not None:
        clock.now += 1.0
    d.post(daemon_mod.AudioIn(speech()))
    command(d, "stop")
    pump(d, lambda: len(d.parts.output.texts) > delivered and d.snapshot().get("worker_ready"))
    return d.parts.output.texts[-1]


class DaemonsWithStores:
    """``make(**cfg)``: a ready daemon (fake workers) with the real history and journal, in the
    data and state dirs the ``isolated_env`` fixture made; :meth:`close` ends them all."""

    def __init__(self) -> None:
        self.made: list[daemon_mod.Daemon] = []

    def __call__(self, clock: Callable[[], float] = time.monotonic, **cfg: Any) -> tuple[daemon_mod.Daemon, list]:
        from ctrlspeak.history import History

        d, events = make_daemon(history=True, journal=True, clock=clock, **cfg)
        d.parts.history = History(timeout=0.3)
        self.made.append(d)
        d._open_journal()  # recovers what a crash left, as start() does
        pump(d, lambda: d.snapshot().get("worker_ready"))
        return d, events

    def close(self) -> None:
        for d in self.made:
            if d.parts.history is not None:
                d.parts.history.close()
            d.supervisor.close()
