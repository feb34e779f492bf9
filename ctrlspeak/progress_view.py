"""Rendering worker progress in a terminal.

Bars are drawn on the main thread only (events are handed over through a queue), and only
when stderr is a terminal; otherwise one plain line per stage is written, so logs and
pipes stay readable. A download (``unit == "B"``) also says its bytes, speed and time left
(:mod:`ctrlspeak.transfer`): on the bar, or in a log every 10 % and at least every 15 s,
and each retry on a line of its own.
"""
from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import IO, Any

from ctrlspeak import transfer
from ctrlspeak.ipc import Progress

_LABELS = {
    "download": "downloading model",
    "import": "importing NeMo",
    "restore": "loading model",
    "warmup": "warming up",
    "transcribe": "transcribing",
}


class ProgressView:
    def __init__(self, stream: IO[str] | None = None, *, bars: bool | None = None, quiet: bool = False,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.stream = stream or sys.stderr
        self.bars = self.stream.isatty() if bars is None else bars
        self.quiet = quiet
        self.clock = clock
        self._stage: str | None = None
        self._bar: Any = None
        #: the download's speed and time left (None until bytes arrive)
        self.meter: transfer.TransferMeter | None = None
        self._throttle = transfer.LineThrottle()
        self._message = ""

    def handle(self, p: Progress) -> None:
        if p.unit == "B" and p.done is not None:
            if self.meter is None:
                self.meter = transfer.TransferMeter()
            self.meter.update(self.clock(), int(p.done), None if p.total is None else int(p.total))
        if self.quiet:
            return
        if p.retry_in_s is not None:
            self._line(f"ctrlspeak: {p.message}")
            return
        if p.stage != self._stage:
            self._finish_bar()
            self._stage = p.stage
            if self.bars:
                self._open_bar(p)
            elif p.unit != "B":
                self._line(f"ctrlspeak: {_LABELS.get(p.stage, p.stage)}: {p.message}")
                return
        if self._bar is not None:
            self._update_bar(p)
        elif p.unit == "B":
            self._download_line(p)

    def _line(self, text: str) -> None:
        if self._bar is not None:
            self._bar.write(text, file=self.stream)
            return
        self.stream.write(text + "\n")
        self.stream.flush()

    def _download_line(self, p: Progress) -> None:
        assert self.meter is not None and self.meter.last is not None
        last = self.meter.last
        due = self._throttle.due(self.clock(), last.percent)
        changed, self._message = p.message != self._message, p.message
        complete = last.total is not None and last.done >= last.total
        if changed and complete:
            self._line(f"ctrlspeak: {p.message}")  # a step after the bytes (the checksum)
        elif changed or due:
            self._line(f"ctrlspeak: {p.message}: {transfer.describe(last)}")

    def _open_bar(self, p: Progress) -> None:
        from tqdm.std import tqdm

        desc = _LABELS.get(p.stage, p.stage)
        self._bar = tqdm(total=100, desc=desc, bar_format="{desc}: {percentage:3.0f}%|{bar}| {postfix}",
                         file=self.stream, leave=False, dynamic_ncols=True)

    def _update_bar(self, p: Progress) -> None:
        bar = self._bar
        if p.unit == "B" and self.meter is not None and self.meter.last is not None:
            last = self.meter.last
            bar.n = round(last.percent or 0)
            bar.set_description_str(p.message or _LABELS["download"], refresh=False)
            bar.set_postfix_str(transfer.describe(last), refresh=False)
        else:
            if p.fraction is not None:
                bar.n = round(100 * p.fraction)
            if p.message:
                bar.set_postfix_str(p.message, refresh=False)
        bar.refresh()

    def _finish_bar(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def close(self) -> None:
        self._finish_bar()
