"""When to unload an idle model (``keep_alive_minutes``).

Pure: the daemon tells it the time and whether it could unload right now (no recording,
nothing left to transcribe, a ready worker, no model switch in flight), and it answers how
long the main loop may block before something is due. The loop blocks on its inbox with
that timeout, so an idle daemon wakes once, to unload, and not on a polling tick.
"""
from __future__ import annotations

from collections.abc import Callable


class KeepAlive:
    def __init__(self, minutes: float) -> None:
        self.limit_s = minutes * 60.0
        self._idle_since: float | None = None

    @property
    def enabled(self) -> bool:
        return self.limit_s > 0

    def note(self, now: float, idle: bool) -> None:
        """Any busy moment restarts the count; the idle time runs from the first idle moment after it."""
        if not idle:
            self._idle_since = None
        elif self._idle_since is None:
            self._idle_since = now

    def restart(self, now: float) -> None:
        """Count a full period again from ``now`` (an unload the supervisor refused)."""
        self._idle_since = now

    def wait_s(self, now: float) -> float | None:
        """Seconds until the model is due to be unloaded; None while nothing is due (block)."""
        if not self.enabled or self._idle_since is None:
            return None
        return max(0.0, self._idle_since + self.limit_s - now)

    def due(self, now: float) -> bool:
        wait = self.wait_s(now)
        return wait is not None and wait <= 0.0

    def tick(self, now: float, idle: Callable[[], bool], unload: Callable[[], bool]) -> bool:
        """The loop's turn: note ``idle()``, and when due call ``unload()`` (False: refused, a
        request still pending: try again a full period later). True once it has unloaded."""
        self.note(now, idle())
        if not self.due(now):
            return False
        if not unload():
            self.restart(now)
            return False
        self.note(now, idle())  # unloaded: the count ends here
        return True
