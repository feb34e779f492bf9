"""Download speed and time left, from byte counts: one pure meter and its wording.

The CLI's progress view and the daemon's status line both feed a :class:`TransferMeter`
with (time, bytes done, total) as progress arrives, and say the result with
:func:`describe`, so ``models download``, ``transcribe``, the console line, the tray and
``status --follow`` give the same numbers. Time is an argument: tests feed their own.
"""
from __future__ import annotations

import collections
from dataclasses import dataclass


@dataclass(frozen=True)
class Transfer:
    done: int
    total: int | None = None
    #: bytes per second over the last few seconds; None until there is enough to tell
    rate: float | None = None
    #: seconds left at that rate; None when the total or the rate is unknown
    eta_s: float | None = None

    @property
    def percent(self) -> float | None:
        if not self.total:
            return None
        return min(100.0, 100.0 * self.done / self.total)


class TransferMeter:
    """The rate over a sliding window, so a connection that slows down shows it soon.

    The first sample is the baseline: bytes that were already there (a resumed download)
    do not count as speed. Bytes going backwards (the server ignored the range and sent the
    file from its start) restart the measurement.
    """

    def __init__(self, window_s: float = 10.0, min_span_s: float = 1.0) -> None:
        self.window_s, self.min_span_s = window_s, min_span_s
        self._samples: collections.deque[tuple[float, int]] = collections.deque()
        self.started: float | None = None
        #: when the last sample came (the download's end, once it is complete)
        self.last_at: float | None = None
        self.first_done: int | None = None
        self.last: Transfer | None = None

    def update(self, now: float, done: int, total: int | None) -> Transfer:
        if self._samples and done < self._samples[-1][1]:
            self._samples.clear()
        if self.started is None:
            self.started, self.first_done = now, done
        self._samples.append((now, done))
        self.last_at = now
        while len(self._samples) > 2 and now - self._samples[1][0] >= self.window_s:
            self._samples.popleft()
        (t0, d0), (t1, d1) = self._samples[0], self._samples[-1]
        rate = (d1 - d0) / (t1 - t0) if t1 - t0 >= self.min_span_s else None
        eta = None
        if rate and total is not None:
            eta = max(0.0, total - done) / rate
        elif total is not None and done >= total:
            eta = 0.0
        self.last = Transfer(done, total, rate, eta)
        return self.last

    def fetched(self) -> int:
        """Bytes moved since the first sample (a resumed download's old bytes excluded)."""
        if self.last is None or self.first_done is None:
            return 0
        return max(0, self.last.done - self.first_done)


class LineThrottle:
    """When a log (not a terminal) gets a progress line: at the first, at every ``step``
    percent, and at least every ``interval_s`` on a slow connection, so it never looks dead."""

    def __init__(self, step: float = 10.0, interval_s: float = 15.0) -> None:
        self.step, self.interval_s = step, interval_s
        self._bucket: int | None = None
        self._at: float | None = None

    def due(self, now: float, percent: float | None) -> bool:
        bucket = -1 if percent is None else int(percent // self.step)
        if self._at is not None and bucket == self._bucket and now - self._at < self.interval_s:
            return False
        self._bucket, self._at = bucket, now
        return True


def human_bytes(n: float) -> str:
    """Decimal units, as the Hugging Face hub shows sizes: 13 MB, 2.5 GB."""
    value = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(value) < 1000 or unit == "TB":
            if unit == "B":
                return f"{value:.0f} B"
            return f"{value:.1f} {unit}" if abs(value) < 10 else f"{value:.0f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def human_duration(seconds: float) -> str:
    s = max(0, round(seconds))
    if s < 60:
        return f"{s} s"
    minutes, s = divmod(s, 60)
    if minutes < 10:
        return f"{minutes} min {s} s" if s else f"{minutes} min"
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def describe(t: Transfer) -> str:
    """'1.2 GB of 2.5 GB (48%), 11 MB/s, 2 min left' with whatever is known so far."""
    text = human_bytes(t.done)
    if t.total:
        text += f" of {human_bytes(t.total)} ({t.percent:.0f}%)"
    if t.rate is not None:
        text += f", {human_bytes(t.rate)}/s"
    if t.eta_s is not None and t.total and t.done < t.total:
        text += f", {human_duration(t.eta_s)} left" if t.eta_s >= 1 else ", almost done"
    return text
