"""The supervisor's timing: how long a request may take, and the one thread that waits for deadlines.

Both take the time from outside (:class:`DeadlineThread` from an injected clock), so tests
drive them with a fake one.
"""
from __future__ import annotations

import threading
from collections.abc import Callable


class SpeedEstimate:
    """How long a request should take: audio seconds over measured RTFx, with room to spare."""

    def __init__(self, initial_rtfx: float = 2.0, margin_s: float = 20.0, factor: float = 6.0) -> None:
        self.rtfx = initial_rtfx
        self.margin_s, self.factor = margin_s, factor
        self._measured = False

    def observe(self, audio_s: float, compute_s: float) -> None:
        if compute_s <= 0 or audio_s < 0.5:
            return
        sample = audio_s / compute_s
        self.rtfx = sample if not self._measured else 0.8 * self.rtfx + 0.2 * sample
        self._measured = True

    def deadline_s(self, audio_s: float) -> float:
        return self.margin_s + self.factor * audio_s / max(self.rtfx, 0.05)


class DeadlineThread:
    """One thread that runs ``act()`` whenever the nearest deadline falls due.

    ``act()`` handles what is due (taking the lock itself); ``next_due()`` and ``stopped()``
    are read with ``wake``'s lock held. Whoever sets an earlier deadline or stops notifies
    ``wake``; the thread then computes its wait again, so it never polls.
    """

    def __init__(self, wake: threading.Condition, clock: Callable[[], float], act: Callable[[], object],
                 next_due: Callable[[], float | None], stopped: Callable[[], bool],
                 name: str = "deadlines") -> None:
        self._wake, self._clock, self._act = wake, clock, act
        self._next_due, self._stopped = next_due, stopped
        self._thread: threading.Thread | None = None
        self._name = name

    def start(self) -> None:
        """Start the thread (once; later calls do nothing)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            self._act()
            with self._wake:
                if self._stopped():
                    return
                # computed again under the lock: a deadline set since act() is not missed
                due = self._next_due()
                timeout = None if due is None else due - self._clock()
                if timeout is None or timeout > 0:
                    self._wake.wait(timeout)
