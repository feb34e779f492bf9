"""Keeping a transcription worker alive, so that no request is lost when it dies.

The :class:`Supervisor` owns one :class:`~ctrlspeak.supervision.client.WorkerClient` at a time
and hands out futures that outlive it:

* a worker that dies (SIGKILL, a segfault, the OOM killer) is noticed through its process
  sentinel at once, restarted after a backoff (1 s, 2 s, 4 s ... 30 s), and every request
  that was in flight is sent again;
* a worker that fails to *boot* several times in a row (a corrupt model, say) is not
  respawned in a loop: the supervisor reports ``ERR_WORKER_BOOT`` (or the load error) and
  waits for a model switch (when to restart and when to give up:
  :mod:`~ctrlspeak.supervision.restart_policy`);
* a request that runs far past its expected time (from the audio length and the speed
  measured so far) is a hang: the worker is killed and restarted and the request retried
  once; a second hang fails it with ``ERR_WORKER_HUNG`` (every request's attempts, hangs
  and deadline: :mod:`~ctrlspeak.supervision.requests`);
* a model switch that fails keeps the previous model (the worker only replaces its model
  once the new one has loaded);
* it publishes one frozen :class:`~ctrlspeak.supervision.worker_state.WorkerState` (phase, model,
  pid, last error) at every transition: ``state`` and the ``on_state`` callback;
* an idle worker can be unloaded (``keep_alive_minutes``): it is stopped, and the next
  :meth:`~Supervisor.reload`, :meth:`~Supervisor.submit` or :meth:`~Supervisor.switch`
  starts a fresh one; requests wait for it like they wait for the first boot.

Deadlines: every hang deadline (one per request attempt) and the restart backoff are
numbers on the supervisor's one deadline thread, which waits on a condition until the
nearest is due (as CPython's executor manager thread waits in one place), never a
``threading.Timer`` each. The clock is injected; :meth:`Supervisor.check_deadlines` acts on
what is due, so tests with a fake clock drive it without sleeping.

Thread safety: callbacks arrive on the client's dispatcher thread and on the deadline
thread; one lock guards the supervisor's table of requests and its deadlines.
"""
from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import numpy as np

from ctrlspeak import errors
from ctrlspeak.ipc import ModelRef, Progress, TranscribeOptions, WorkerReady, WorkerSettings
from ctrlspeak.supervision.backoff import Backoff
from ctrlspeak.supervision.client import WorkerClient, describe_exit
from ctrlspeak.supervision.deadlines import DeadlineThread, SpeedEstimate
from ctrlspeak.supervision.requests import Request, RequestTable
from ctrlspeak.supervision.restart_policy import RestartPolicy
from ctrlspeak.supervision.worker_state import BootCause, WorkerPhase, WorkerState

log = logging.getLogger(__name__)

__all__ = ["Backoff", "SpeedEstimate", "Supervisor"]


ClientFactory = Callable[..., Any]


class Supervisor:
    def __init__(
        self,
        settings_for: Callable[[ModelRef], WorkerSettings],
        model: ModelRef,
        *,
        on_progress: Callable[[Progress], None] = lambda p: None,
        on_ready: Callable[[WorkerReady], None] = lambda r: None,
        on_trouble: Callable[[errors.CtrlspeakError, bool], None] = lambda e, final: None,
        on_state: Callable[[WorkerState], None] = lambda s: None,
        max_boot_failures: int = 3,
        max_attempts: int = 3,
        backoff: Backoff | None = None,
        speed: SpeedEstimate | None = None,
        client_factory: ClientFactory = WorkerClient,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings_for = settings_for
        self.model = model
        self._on_progress = on_progress
        self._on_ready = on_ready
        self._on_trouble = on_trouble
        self._on_state = on_state
        self._policy = RestartPolicy(backoff or Backoff(), max_boot_failures)
        self._factory = client_factory
        self._clock = clock
        self._lock = threading.RLock()
        #: wakes the deadline thread when a deadline is set, or to stop it
        self._wake = threading.Condition(self._lock)
        self._deadlines = DeadlineThread(self._wake, clock, self.check_deadlines, self._next_deadline,
                                         lambda: self._closed, name="supervisor-deadlines")
        self._requests = RequestTable(speed or SpeedEstimate(), max_attempts)
        self._client: Any = None
        self._generation = 0
        self._ready: WorkerReady | None = None
        #: clock time of the next worker restart (None: none scheduled)
        self._restart_at: float | None = None
        self._closed = False
        self._switch_waiter: Future | None = None
        self._loading: Future | None = None  # an in-place model switch
        self._ever_ready = False
        self._state = WorkerState("starting", model)

    @property
    def restarts(self) -> int:
        """Worker restarts scheduled so far (after a crash, a hang or a failed boot)."""
        return self._policy.restarts

    @property
    def speed(self) -> SpeedEstimate:
        """How long a request should take, learnt from every answer (sets the hang deadlines)."""
        return self._requests.speed

    @property
    def state(self) -> WorkerState:
        """The worker's state now (frozen; a new one at every transition)."""
        return self._state

    @property
    def unloaded(self) -> bool:
        """The worker was stopped by unload() and none runs until the next reload."""
        return self._state.phase == "unloaded"

    @property
    def gave_up(self) -> errors.CtrlspeakError | None:
        return self._state.gave_up

    def _set_state(self, **changes: Any) -> None:
        # called with the lock held, so states reach on_state in the order they were made
        self._state = dataclasses.replace(self._state, version=self._state.version + 1, **changes)
        self._on_state(self._state)

    # -- public -------------------------------------------------------------------------
    @property
    def ready(self) -> WorkerReady | None:
        return self._ready

    @property
    def pid(self) -> int | None:
        return None if self._client is None else self._client.pid

    def start(self) -> None:
        with self._lock:
            self._spawn("starting", "start")

    def submit(self, audio: np.ndarray, options: TranscribeOptions | None = None) -> Future:
        request = Request.new(audio, options)
        with self._lock:
            if self._closed:
                request.future.set_exception(errors.WorkerCrashed("the transcription worker is shut down"))
                return request.future
            self._requests.add(request)
            if self.unloaded:
                self._reload()  # held below until the fresh worker is ready
            if self._ready is not None:
                self._send(request)
            elif self.gave_up is not None:
                self._requests.fail(request, self.gave_up)
        return request.future

    def switch(self, model: ModelRef) -> Future:
        """Load another model. Returns a future for its WorkerReady.

        With a ready worker the switch happens in place and a failure keeps the old model.
        With no working worker (boot failures) a fresh worker is started on the new model.
        """
        with self._lock:
            if self._ready is not None and self._client is not None:
                future = self._client.load_model(model)
                self._loading = future
                self._set_state(phase="switching", switching_to=model)
                future.add_done_callback(lambda f: self._switched(model, f))
                return future
            cause: BootCause = "reload" if self.unloaded else "switch"
            self.model = model
            self._policy.reset()
            self._retire_client()
            future: Future = Future()
            self._switch_waiter = future
            # the state keeps the old model until the new one is ready, as an in-place switch does
            self._spawn("switching", cause, switching_to=model, error=None)
            return future

    def retry(self) -> None:
        """Start a fresh worker on the same model after giving up (a download that failed)."""
        with self._lock:
            if self._closed:
                return
            self._policy.reset()
            self._retire_client()
            self._spawn("restarting", "retry", error=None)

    def unload(self) -> bool:
        """Stop an idle worker to free its memory; False (and nothing done) unless it is
        ready with no request pending. Its exit is not a crash: nothing restarts it until
        :meth:`reload`, :meth:`submit` or :meth:`switch`."""
        with self._lock:
            switching = self._loading is not None and not self._loading.done()
            if self._closed or self._ready is None or self._client is None or self._requests or switching:
                return False
            log.info("unloading the idle worker %s (%s)", self._client.pid, self.model.name)
            self._ready = None
            self._retire_client()  # stops it on a thread: the caller does not wait
            self._set_state(phase="unloaded", ready=None, pid=None)
            return True

    def reload(self) -> bool:
        """Start a worker again after :meth:`unload`; False when none was unloaded."""
        with self._lock:
            if self._closed or not self.unloaded:
                return False
            self._reload()
            return True

    def _reload(self) -> None:
        self._policy.backoff.reset()
        self._spawn("reloading", "reload")

    def close(self, timeout: float = 10.0) -> None:
        with self._lock:
            self._closed = True
            self._restart_at = None
            self._wake.notify_all()  # the deadline thread sees _closed and ends
            self._set_state(phase="closed", ready=None, pid=None)
            client, self._client = self._client, None
            pending = self._requests.drain()
        if client is not None:
            client.close(timeout=timeout)
        for request in pending:
            request.fail(errors.WorkerCrashed("the daemon is shutting down"))

    def kill_worker(self) -> None:
        client = self._client
        if client is not None:
            client.kill()

    # -- deadlines ----------------------------------------------------------------------
    def check_deadlines(self) -> float | None:
        """Act on every deadline that has passed by the clock (hung requests, a due restart);
        return the clock time of the next one, None when none is set."""
        with self._lock:
            if self._closed:
                return None
            now = self._clock()
            hung = self._requests.due(now)
            restart = self._restart_at is not None and self._restart_at <= now
            if restart:
                self._restart_at = None
        # hangs first: their kill must hit the worker that hung, not a fresh one
        for request_id, attempt in hung:
            self._timed_out(request_id, attempt)
        if restart:
            self._restart()
        with self._lock:
            return self._next_deadline()

    def _next_deadline(self) -> float | None:
        times = self._requests.deadlines()
        if self._restart_at is not None:
            times.append(self._restart_at)
        return min(times, default=None)

    # -- worker life cycle --------------------------------------------------------------
    def _spawn(self, phase: WorkerPhase, cause: BootCause, **changes: Any) -> None:
        self._deadlines.start()
        self._generation += 1
        generation = self._generation
        client = self._factory(self._settings_for(self.model), on_progress=self._on_progress,
                               on_exit=lambda code: self._exited(generation, code))
        self._client, self._ready = client, None
        client.start()
        self._set_state(phase=phase, booted_by=cause, pid=client.pid, ready=None, **changes)
        client.ready.add_done_callback(lambda f: self._booted(generation, f))

    def _retire_client(self) -> None:
        client, self._client = self._client, None
        self._generation += 1  # callbacks from the old client are now ignored
        if client is not None:
            threading.Thread(target=client.close, kwargs={"timeout": 5.0}, daemon=True).start()

    def _booted(self, generation: int, future: Future) -> None:
        with self._lock:
            if generation != self._generation or self._closed:
                return
            try:
                ready = future.result()
            except errors.CtrlspeakError as exc:
                self._boot_failed(exc)
                return
            self._ready = ready
            self._policy.reset()
            waiter, self._switch_waiter = self._switch_waiter, None
            first, self._ever_ready = not self._ever_ready and waiter is None, True
            self._set_state(phase="ready", model=self.model, ready=ready, error=None, switching_to=None,
                            first_ready=first)
            for request in self._requests.waiting():
                self._send(request)
        if waiter is not None and not waiter.done():
            waiter.set_result(ready)
        self._on_ready(ready)

    def _boot_failed(self, exc: errors.CtrlspeakError) -> None:
        gave_up = self._policy.boot_failed(exc)
        if gave_up is None:
            self._schedule_restart(exc)
            return
        log.error("not restarting the worker: %s", gave_up.one_line())
        self._set_state(phase="gave_up", error=gave_up, ready=None, switching_to=None)
        waiter, self._switch_waiter = self._switch_waiter, None
        self._requests.fail_all(gave_up)
        if waiter is not None and not waiter.done():
            waiter.set_exception(gave_up)
        self._on_trouble(gave_up, True)

    def _exited(self, generation: int, exitcode: int | None) -> None:
        with self._lock:
            if generation != self._generation or self._closed:
                return
            was_ready = self._ready is not None
            self._ready = None
            if not was_ready:
                return  # _booted() sees the failed ready future and decides
            exc = errors.WorkerCrashed(f"the transcription worker {describe_exit(exitcode)}; restarting it")
            log.warning("%s", exc.message)
            self._schedule_restart(exc)

    def _schedule_restart(self, exc: errors.CtrlspeakError) -> None:
        delay = self._policy.next_delay()
        self._set_state(phase="restarting", error=exc, ready=None)
        self._on_trouble(exc, False)
        log.info("restarting the worker in %.0f s", delay)
        self._restart_at = self._clock() + delay
        self._wake.notify_all()

    def _restart(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._retire_client()
            self._spawn("restarting", "restart")

    def _switched(self, model: ModelRef, future: Future) -> None:
        with self._lock:
            if self._closed:
                return
            if future.exception() is None:
                self.model = model
                self._ready = future.result()
                self._set_state(phase="ready", model=model, ready=self._ready, switching_to=None)
            else:  # the old model stays (or the worker died meanwhile: its phase stays)
                phase = "ready" if self._state.phase == "switching" else self._state.phase
                self._set_state(phase=phase, switching_to=None)

    # -- requests -----------------------------------------------------------------------
    def _send(self, request: Request) -> None:
        request.attempts += 1
        request.generation = self._generation
        inner = self._client.submit(request.audio, request.options, request_id=f"{request.id}.{request.attempts}")
        request.deadline = self._clock() + self.speed.deadline_s(request.audio.size / 16000)
        self._wake.notify_all()
        inner.add_done_callback(lambda f: self._answered(request, request.attempts, f))

    def _answered(self, request: Request, attempt: int, inner: Future) -> None:
        with self._lock:
            self._requests.answered(request, attempt, inner, may_retry=not self._closed)

    def _timed_out(self, request_id: str, attempt: int) -> None:
        with self._lock:
            if not self._requests.hung(request_id, attempt):
                return
            client = self._client
            hung = errors.WorkerHung("the transcription worker stopped responding; restarting it")
            # not ready from now on, though the supervisor's _ready stays until its exit is seen
            self._set_state(phase="restarting", error=hung, ready=None)
        self._on_trouble(hung, False)
        if client is not None:
            client.kill()  # the sentinel then drives the normal restart-and-resend path
