"""The supervisor's table of requests: one entry per request id, with its attempts, hangs and hang deadline.

Every future :meth:`Supervisor.submit <ctrlspeak.supervision.supervisor.Supervisor.submit>`
hands out has one :class:`Request` here until the future is done, matched by id (as CPython's
``pending_work_items`` in ``concurrent/futures/process.py``); each attempt goes to the worker
as ``<id>.<attempt>``. The table settles an attempt's answer (a result, a retry once a new
worker is ready, or a failure) and counts hangs; the supervisor does the rest (sending,
killing a hung worker, its state).

Not thread-safe by itself: the supervisor calls every method with its lock held.
"""
from __future__ import annotations

import logging
import uuid
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np

from ctrlspeak import errors
from ctrlspeak.ipc import TranscribeOptions, Transcript
from ctrlspeak.supervision.deadlines import SpeedEstimate

log = logging.getLogger(__name__)


@dataclass
class Request:
    id: str
    audio: np.ndarray
    options: TranscribeOptions
    future: Future
    attempts: int = 0
    hangs: int = 0
    generation: int = -1
    #: clock time past which the current attempt counts as hung (None: not in the worker)
    deadline: float | None = field(default=None, repr=False)

    @classmethod
    def new(cls, audio: np.ndarray, options: TranscribeOptions | None) -> Request:
        return cls(uuid.uuid4().hex[:12], np.ascontiguousarray(audio, np.float32),
                   options or TranscribeOptions(), Future())

    def fail(self, exc: errors.CtrlspeakError) -> None:
        """End the request with ``exc`` (unless its future is done already)."""
        self.deadline = None
        if not self.future.done():
            self.future.set_exception(exc)


class RequestTable:
    """The requests whose futures are not done yet, by id."""

    def __init__(self, speed: SpeedEstimate, max_attempts: int) -> None:
        #: learns from every answer; its deadline_s() sets each attempt's hang deadline
        self.speed = speed
        self._max_attempts = max_attempts
        self._by_id: dict[str, Request] = {}

    def __len__(self) -> int:
        return len(self._by_id)

    def add(self, request: Request) -> None:
        self._by_id[request.id] = request

    def waiting(self) -> list[Request]:
        """The requests whose futures are not done (to send to a worker that is now ready)."""
        return [r for r in self._by_id.values() if not r.future.done()]

    def drain(self) -> list[Request]:
        """Every request, removed from the table."""
        pending = list(self._by_id.values())
        self._by_id.clear()
        return pending

    def due(self, now: float) -> list[tuple[str, int]]:
        """(id, attempt) of every attempt whose hang deadline has passed; their deadlines are cleared."""
        hung = [(r.id, r.attempts) for r in self._by_id.values()
                if r.deadline is not None and r.deadline <= now and not r.future.done()]
        for request_id, _ in hung:
            self._by_id[request_id].deadline = None
        return hung

    def deadlines(self) -> list[float]:
        return [r.deadline for r in self._by_id.values() if r.deadline is not None]

    def answered(self, request: Request, attempt: int, inner: Future, *, may_retry: bool) -> None:
        """Settle the worker's answer to one attempt: the result, a retry (the worker died: the
        request is resent when the restarted worker is ready) or the request's failure."""
        if request.attempts != attempt or request.future.done():
            return  # an answer from an attempt we already gave up on
        exc = inner.exception()
        if exc is None:
            request.deadline = None
            self._by_id.pop(request.id, None)
            transcript: Transcript = inner.result()
            self.speed.observe(transcript.timings.audio_s, transcript.timings.compute_s)
            request.future.set_result(transcript)
            return
        if isinstance(exc, errors.WorkerError) and may_retry:
            if request.attempts < self._max_attempts:
                request.deadline = None
                return  # resent when the restarted worker is ready
        self.fail(request, exc if isinstance(exc, errors.CtrlspeakError) else errors.TranscribeError(str(exc)))

    def hung(self, request_id: str, attempt: int) -> bool:
        """Count a hang of this attempt (a second one fails the request); False when the
        attempt is no longer current, so there is nothing to do."""
        request = self._by_id.get(request_id)
        if request is None or request.attempts != attempt or request.future.done():
            return False
        request.hangs += 1
        log.warning("request %s took longer than %.0f s: the worker looks hung",
                    request_id, self.speed.deadline_s(request.audio.size / 16000))
        if request.hangs > 1:
            self.fail(request, errors.WorkerHung(
                "the worker hung twice on this recording; it is kept in the journal for `ctrlspeak retry`"))
        return True

    def fail(self, request: Request, exc: errors.CtrlspeakError) -> None:
        self._by_id.pop(request.id, None)
        request.fail(exc)

    def fail_all(self, exc: errors.CtrlspeakError) -> None:
        for request in list(self._by_id.values()):
            self.fail(request, exc)
