"""The daemon's handle on one transcription worker process.

The worker is started from an explicit ``spawn`` context (never a global start method).
One dispatcher thread waits on the results queue, the progress queue and the process
sentinel together (``multiprocessing.connection.wait``, as concurrent.futures does), so it
sleeps until something happens and notices a dead worker at once. Every request
(transcription or model switch) and the boot itself has an id and one future in one
table, ``_pending``; a reply resolves the future with its id, never by arrival order.
See :mod:`ctrlspeak.ipc` for the picture.
"""
from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
import queue
import signal
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import numpy as np

from ctrlspeak import errors
from ctrlspeak.ipc import (
    BOOT_ID,
    Failure,
    LoadModel,
    ModelRef,
    Progress,
    Shutdown,
    TranscribeOptions,
    TranscribeRequest,
    Transcript,
    WorkerReady,
    WorkerSettings,
)

log = logging.getLogger(__name__)

ProgressCallback = Callable[[Progress], None]


def describe_exit(exitcode: int | None) -> str:
    from ctrlspeak.workers.main import EXIT_BOOT_FAILED, EXIT_PARENT_DIED

    if exitcode is None:
        return "is still running"
    if exitcode < 0:
        try:
            return f"was killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"was killed by signal {-exitcode}"
    if exitcode == EXIT_BOOT_FAILED:
        return "could not load its model"
    if exitcode == EXIT_PARENT_DIED:
        return "saw its parent die"
    return f"exited with status {exitcode}"


class WorkerClient:
    def __init__(self, settings: WorkerSettings, on_progress: ProgressCallback | None = None,
                 on_exit: Callable[[int | None], None] | None = None) -> None:
        self.settings = settings
        self._on_progress = on_progress
        self._on_exit_cb = on_exit
        self._ctx = multiprocessing.get_context("spawn")
        self._requests = self._ctx.Queue()
        self._results = self._ctx.Queue()
        self._events = self._ctx.Queue(maxsize=settings.progress_queue_size)
        self._process: Any = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.ready: Future[WorkerReady] = Future()
        #: every request waiting for its reply, by id (the boot's under BOOT_ID)
        self._pending: dict[str, Future[Any]] = {BOOT_ID: self.ready}
        self.started_at = 0.0
        self.ready_at = 0.0
        self.exited = threading.Event()

    # -- life cycle -------------------------------------------------------------------
    def start(self) -> None:
        from ctrlspeak.workers.main import run_worker

        self.started_at = time.monotonic()
        self._process = self._ctx.Process(
            target=run_worker,
            args=(self.settings, self._requests, self._results, self._events),
            name="ctrlspeak-worker",
        )
        self._process.start()
        self._thread = threading.Thread(target=self._dispatch, name="worker-dispatch", daemon=True)
        self._thread.start()

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    @property
    def exitcode(self) -> int | None:
        return None if self._process is None else self._process.exitcode

    @property
    def sentinel(self) -> int:
        return self._process.sentinel

    def is_alive(self) -> bool:
        return self._process is not None and not self.exited.is_set()

    def wait_ready(self, timeout: float | None = None) -> WorkerReady:
        return self.ready.result(timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Ask the worker to finish, then make sure it is gone.

        Only the dispatcher thread reaps the process (two threads calling waitpid race),
        so this waits on ``exited`` rather than joining.
        """
        if self._process is None:
            return
        if not self.exited.is_set():
            try:
                self._requests.put(Shutdown("client closing"))
            except (OSError, ValueError):
                pass
        for action, grace in (("shutdown", timeout), ("terminate", 3.0), ("kill", 3.0)):
            if action == "terminate":
                log.warning("worker %s did not stop within %.0f s; terminating", self.pid, timeout)
                self._process.terminate()
            elif action == "kill":
                self._process.kill()
            if self.exited.wait(grace):
                break
        if self._thread is not None:
            self._thread.join(2.0)
        self._requests.cancel_join_thread()
        self._requests.close()

    def kill(self) -> None:
        if self._process is not None and not self.exited.is_set():
            self._process.kill()

    # -- requests ---------------------------------------------------------------------
    def submit(self, audio: np.ndarray, options: TranscribeOptions | None = None, request_id: str | None = None) -> Future[Transcript]:
        request = TranscribeRequest(
            id=request_id or uuid.uuid4().hex[:12],
            audio=np.ascontiguousarray(audio, dtype=np.float32),
            options=options or TranscribeOptions(),
            sent_at=time.monotonic(),
        )
        return self._send(request)

    def transcribe(self, audio: np.ndarray, options: TranscribeOptions | None = None, timeout: float | None = None) -> Transcript:
        return self.submit(audio, options).result(timeout)

    def load_model(self, model: ModelRef, request_id: str | None = None) -> Future[WorkerReady]:
        request = LoadModel(id=request_id or f"load-{uuid.uuid4().hex[:12]}", model=model)
        return self._send(request)

    def _send(self, request: TranscribeRequest | LoadModel) -> Future:
        """Put ``request`` in the one table under its id, then on the queue; a dead worker
        answers at once (ERR_WORKER_CRASHED) rather than never."""
        future: Future = Future()
        with self._lock:
            if self.exited.is_set():
                future.set_exception(errors.WorkerCrashed(f"the worker {describe_exit(self.exitcode)}"))
                return future
            self._pending[request.id] = future
        self._requests.put(request)
        return future

    # -- dispatcher thread ------------------------------------------------------------
    def _dispatch(self) -> None:
        results_r = self._results._reader  # the same private handle concurrent.futures waits on
        events_r = self._events._reader
        sentinel = self._process.sentinel
        while True:
            readable = multiprocessing.connection.wait([results_r, events_r, sentinel])
            if results_r in readable:
                self.deliver(self._results.get())
            if events_r in readable:
                try:
                    self.deliver(self._events.get_nowait())
                except queue.Empty:
                    pass  # the worker dropped a stale one under us
            if sentinel in readable:
                self._process.join()
                self._drain()
                self._on_exit()
                return

    def _drain(self) -> None:
        for q in (self._results, self._events):
            while True:
                try:
                    self.deliver(q.get(timeout=0.05))
                except (queue.Empty, EOFError, OSError):
                    break

    def deliver(self, message: object) -> None:
        """Resolve the future a message from the worker answers (the dispatcher thread calls
        this for every message; tests call it to play a worker's replies in any order)."""
        if isinstance(message, Progress):
            if self._on_progress is not None:
                self._on_progress(message)
            return
        if not isinstance(message, (Transcript, WorkerReady, Failure)):
            log.warning("unexpected message from worker: %r", type(message).__name__)
            return
        if message.id is None:  # a Failure the worker could not tie to a request
            log.warning("worker failure with no request id: %s %s", getattr(message, "code", ""),
                        getattr(message, "message", ""))
            return
        with self._lock:
            future = self._pending.pop(message.id, None)
        if future is None or future.done():
            log.debug("reply %s matches no pending request", message.id)
            return
        if isinstance(message, Failure):
            future.set_exception(message.to_error())
            return
        if message.id == BOOT_ID:
            self.ready_at = time.monotonic()
        future.set_result(message)

    def _on_exit(self) -> None:
        how = describe_exit(self.exitcode)
        with self._lock:
            self.exited.set()
            boot = self._pending.pop(BOOT_ID, None)
            pending = list(self._pending.values())
            self._pending.clear()
        if boot is not None and not boot.done():
            boot.set_exception(errors.WorkerBootError(f"the worker {how} before it was ready"))
        for future in pending:
            if not future.done():
                future.set_exception(errors.WorkerCrashed(f"the worker {how} while handling the request"))
        if self._on_exit_cb is not None:
            self._on_exit_cb(self.exitcode)


def settings_from_config(cfg: Any, ref: Any) -> WorkerSettings:
    """The worker's settings from the one ``Config`` (the CLI and the daemon share this)."""
    from ctrlspeak.models import hub
    from ctrlspeak.models.download import is_offline

    return WorkerSettings(
        model=ref,
        compute_device=cfg.compute_device,
        threads=cfg.effective_threads,
        offline=is_offline(cfg.offline),
        hf_cache_dir=cfg.hf_cache_dir,
        hf_endpoint=hub.endpoint(),
        weights_cache_dir=cfg.weights_cache_dir,
        sdpa=cfg.sdpa,
        quantize=cfg.quantize,
        log_level=cfg.log_level,
    )
