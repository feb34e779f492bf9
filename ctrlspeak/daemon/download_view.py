"""What the daemon says about its model's download (the first run, or a switch to a model
not downloaded yet): a pure state machine fed the worker's download Progress and the time.

It decides when a status line is worth publishing (at most every ``publish_s``, and at
every new step, the end and each retry), when a notice is (once the time left is known:
how long, and that dictation works meanwhile; a retry at most once a ``retry_notice_s``),
and how a recording made meanwhile is told what it waits for. The daemon owns one per
download and publishes what it returns.
"""
from __future__ import annotations

from dataclasses import dataclass

from ctrlspeak.ipc import Progress
from ctrlspeak.transfer import Transfer, TransferMeter, describe, human_bytes, human_duration


@dataclass(frozen=True)
class Said:
    transfer: Transfer
    #: publish a status line for this step now
    line: bool
    #: and this notice (a notification), if any
    notice: str | None = None


class DownloadView:
    def __init__(self, publish_s: float = 0.25, retry_notice_s: float = 60.0) -> None:
        self.publish_s, self.retry_notice_s = publish_s, retry_notice_s
        self.meter = TransferMeter()
        self._step = ""  # the download's current message: a new one is a new step
        self._published: float | None = None
        self._announced = False
        self._retry_noticed: float | None = None

    def feed(self, p: Progress, now: float, name: str, quiet: bool = False) -> Said:
        """``quiet``: a recording is on show; count the bytes, say nothing, keep the notices for later."""
        t = self.meter.update(now, int(p.done or 0), None if p.total is None else int(p.total))
        new_step, self._step = p.message != self._step, p.message
        complete = t.total is not None and t.done >= t.total
        due = self._published is None or now - self._published >= self.publish_s
        if quiet or not (new_step or complete or p.retry_in_s is not None or due):
            return Said(t, line=False)
        self._published = now
        notice = None
        if p.retry_in_s is not None:
            if self._retry_noticed is None or now - self._retry_noticed >= self.retry_notice_s:
                self._retry_noticed = now
                notice = f"downloading {name}: {p.message}"
        elif not self._announced and t.eta_s is not None and not complete:
            self._announced = True
            notice = (f"downloading {name}: {describe(t)}. You can dictate meanwhile: what you say is kept "
                      "and typed once it is ready")
        return Said(t, line=True, notice=notice)

    def to_json(self) -> dict[str, float | int | None]:
        """The latest numbers, as StatusEvent fields (and the daemon's status snapshot)."""
        t = self.meter.last or Transfer(0)
        return {"percent": None if t.percent is None else round(t.percent, 1), "done_bytes": t.done,
                "total_bytes": t.total, "rate_bps": None if t.rate is None else round(t.rate),
                "eta_s": None if t.eta_s is None else round(t.eta_s, 1)}

    @property
    def active(self) -> bool:
        """Bytes are still to come."""
        last = self.meter.last
        return last is not None and (last.total is None or last.done < last.total)

    def waiting(self, name: str) -> str:
        """'parakeet is still downloading (20%, about 8 s left)'; "" when nothing is downloading."""
        t = self.meter.last
        if t is None or not self.active:
            return ""
        known = [f"{t.percent:.0f}%" if t.percent is not None else "",
                 f"about {human_duration(t.eta_s)} left" if t.eta_s is not None else ""]
        detail = ", ".join(k for k in known if k)
        return f"{name} is still downloading" + (f" ({detail})" if detail else "")

    def summary(self) -> str:
        """'; downloaded 2.5 GB in 3 min 10 s' once bytes were fetched, for the ready message."""
        m = self.meter
        if m.started is None or m.last_at is None or not m.fetched():
            return ""
        return f"; downloaded {human_bytes(m.fetched())} in {human_duration(m.last_at - m.started)}"
