"""The worker's two outbound channels.

Results (ready, transcripts, failures) must never be lost, so ``send_result`` blocks if
it has to. Progress must never stall the worker: ``emit`` appends to a small bounded
backlog, which forgets its oldest (stalest) entry when full, and returns at once. A
sender thread moves the backlog into the bounded progress queue; it is the only thread
that may wait on a slow reader.
"""
from __future__ import annotations

import collections
import threading
import time
from typing import Any

from ctrlspeak.ipc import Progress, Stage


class Channels:
    def __init__(self, results: Any, events: Any, min_interval_s: float = 0.05, backlog: int = 8) -> None:
        self._results = results
        self._events = events
        self._min_interval_s = min_interval_s
        self._last: tuple[str, float] = ("", 0.0)
        self._backlog: collections.deque[Progress] = collections.deque(maxlen=backlog)
        self._wake = threading.Condition()
        self._sender = threading.Thread(target=self._send_progress, name="progress-sender", daemon=True)
        self._sender.start()

    def send_result(self, message: object) -> None:
        self._results.put(message)

    def emit(self, progress: Progress) -> None:
        now = time.monotonic()
        stage, last_t = self._last
        final = (progress.fraction is not None and progress.fraction >= 1.0) or progress.retry_in_s is not None
        # rate-limit within a stage; stage changes, completions and retries always go out
        if stage == progress.stage and not final and now - last_t < self._min_interval_s:
            return
        self._last = (progress.stage, now)
        with self._wake:
            self._backlog.append(progress)  # a full deque drops its oldest entry
            self._wake.notify()

    def progress(self, stage: Stage, fraction: float | None, message: str = "", **extra: Any) -> None:
        self.emit(Progress(stage=stage, fraction=fraction, message=message, **extra))

    def _send_progress(self) -> None:
        while True:
            with self._wake:
                while not self._backlog:
                    self._wake.wait()
                progress = self._backlog.popleft()
            self._events.put(progress)  # blocks only this thread when the reader lags
