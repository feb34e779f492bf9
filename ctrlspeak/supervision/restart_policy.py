"""When a worker that died or failed to boot is started again, and when the supervisor stops trying.

A worker that dies or fails to boot is restarted after a backoff (1 s, 2 s, 4 s ... 30 s). By
gunicorn's rule a worker that cannot boot is not respawned in a loop: an error that no new
worker would fix (the model is missing, not cached or broken; no such device; no disk space)
gives up at once, any other after ``max_boot_failures`` boots in a row. No clock and no
lock: the :class:`~ctrlspeak.supervision.supervisor.Supervisor` calls it with its lock held
and turns a delay into a deadline itself.
"""
from __future__ import annotations

from ctrlspeak import errors
from ctrlspeak.supervision.backoff import Backoff

#: boot errors that another worker on the same model would only repeat
PERMANENT = (errors.ModelNotFound, errors.ModelNotCached, errors.ModelLoadError,
             errors.DeviceUnavailable, errors.DiskSpaceError)


def give_up_error(exc: errors.CtrlspeakError, failures: int, max_failures: int) -> errors.CtrlspeakError | None:
    """The error to give up with after ``failures`` boots in a row failed (the last with
    ``exc``); None while another worker should be tried."""
    permanent = isinstance(exc, PERMANENT)
    if not (permanent or failures >= max_failures):
        return None
    if permanent:
        return exc
    if isinstance(exc, errors.ModelDownloadError):  # its code and hint say what to do
        return errors.ModelDownloadError(f"{exc.message} (gave up after {failures} workers tried)", hint=exc.hint)
    return errors.WorkerBootError(f"the worker failed to start {failures} times in a row: {exc.message}")


class RestartPolicy:
    """Counts failed boots and restarts; hands out the backoff's delays."""

    def __init__(self, backoff: Backoff, max_boot_failures: int) -> None:
        self.backoff = backoff
        self.max_boot_failures = max_boot_failures
        #: boots that failed in a row (a worker that got ready, a switch or a retry clears it)
        self.boot_failures = 0
        #: restarts scheduled since the supervisor was made
        self.restarts = 0

    def reset(self) -> None:
        """A fresh start: a worker got ready, or a person asked for another model or a retry."""
        self.boot_failures = 0
        self.backoff.reset()

    def boot_failed(self, exc: errors.CtrlspeakError) -> errors.CtrlspeakError | None:
        """Count a failed boot: the error to give up with, or None to restart after :meth:`next_delay`."""
        self.boot_failures += 1
        return give_up_error(exc, self.boot_failures, self.max_boot_failures)

    def next_delay(self) -> float:
        """Seconds until the next restart (counted as one)."""
        delay = self.backoff.next()
        self.restarts += 1
        return delay
