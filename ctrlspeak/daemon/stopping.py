"""How the daemon stops: the first stop lets dictations in flight finish within a grace, a second forces.

As uvicorn's ``Server`` keeps ``should_exit`` and ``force_exit``: the signal handler only posts an
event, the loop calls :meth:`Stopping.request`, and the grace is a deadline the loop waits on
like any other (no timer). :class:`RelayGuard` is the one thing that runs on the signal relay's
thread besides posting: after a second signal it gives the loop :data:`FORCE_EXIT_S` to get
out, and exits itself if the loop is stuck in a call that never returns.
"""
from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

#: a stop (SIGTERM, SIGINT, the tray's Quit) lets the dictations in flight finish for this long;
#: what is left then stays in the journal and is transcribed at the next start. Below the unit's
#: TimeoutStopSec (15 s, ctrlspeak.service.systemd) with room for shutdown() (the worker's 5 s close).
STOP_GRACE_S = 8.0
#: after a second stop signal the relay waits this long for the loop to exit, then exits itself
FORCE_EXIT_S = 3.0
#: the exit status of a forced stop (128 + SIGINT, as a shell reports an interrupt)
FORCED_EXIT_STATUS = 130


class Stopping:
    """The loop's side: whether to stop, by when, and with which exit status."""

    def __init__(self, clock: Callable[[], float], grace_s: float = STOP_GRACE_S) -> None:
        self._clock = clock
        self._grace_s = grace_s
        self.requested = False
        self.forced = False
        self.deadline: float | None = None
        self.exit_status = 0

    def request(self) -> bool:
        """A stop reached the loop: True for the first (finish what is in flight), False when
        this one forces the exit."""
        if self.requested:
            self.forced, self.exit_status = True, FORCED_EXIT_STATUS
            return False
        self.requested, self.deadline = True, self._clock() + self._grace_s
        return True

    def wait_s(self, now: float) -> float | None:
        return None if self.deadline is None else max(0.0, self.deadline - now)

    def overdue(self) -> bool:
        return self.deadline is not None and self._clock() >= self.deadline

    def should_exit(self, idle: bool, in_journal: Callable[[], list[bool]]) -> bool:
        """The loop's test after every event: forced, or stopping and idle, or the grace over
        (then what is left is said: ``in_journal()``, for each dictation, is it kept there?)."""
        if self.forced or (self.requested and idle):
            return True
        if self.requested and self.overdue():
            say_what_is_left(in_journal())
            return True
        return False


def say_what_is_left(in_journal: list[bool]) -> None:
    """The grace is over with these dictations untranscribed (each: kept in the journal?)."""
    kept = sum(in_journal)
    lost = len(in_journal) - kept
    log.warning("stopping after %.0f s with %d dictation(s) not transcribed: %d kept in the journal "
                "(transcribed at the next start)%s", STOP_GRACE_S, len(in_journal), kept,
                f", {lost} lost (the journal is off or failed)" if lost else "")


class RelayGuard:
    """The relay's side: counts stop signals; after the second, exits if the loop cannot."""

    def __init__(self, kill_worker: Callable[[], None]) -> None:
        self._kill_worker = kill_worker
        self._count = 0  # touched on the relay's thread only
        #: set once shutdown() is over: the fallback stands down
        self.exited = threading.Event()

    def stop_signal(self) -> None:
        self._count += 1
        if self._count >= 2 and not self.exited.wait(FORCE_EXIT_S):
            # the loop did not get out in time: it is stuck in a call that never returns, and a
            # second Ctrl+C must work all the same. The journal keeps what was being recorded.
            log.warning("the daemon did not stop within %.0f s of a second signal: exiting now", FORCE_EXIT_S)
            self._kill_worker()
            os._exit(FORCED_EXIT_STATUS)
