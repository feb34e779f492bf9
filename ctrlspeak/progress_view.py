"""Rendering worker progress in a terminal.

Bars are drawn on the main thread only (events are handed over through a queue), and only
when stderr is a terminal; otherwise one plain line per stage is written, so logs and
pipes stay readable.
"""
from __future__ import annotations

import sys
from typing import IO, Any

from ctrlspeak.ipc import Progress

_LABELS = {
    "download": "downloading model",
    "import": "importing NeMo",
    "restore": "loading model",
    "warmup": "warming up",
    "transcribe": "transcribing",
}


class ProgressView:
    def __init__(self, stream: IO[str] | None = None, *, bars: bool | None = None, quiet: bool = False) -> None:
        self.stream = stream or sys.stderr
        self.bars = self.stream.isatty() if bars is None else bars
        self.quiet = quiet
        self._stage: str | None = None
        self._bar: Any = None

    def handle(self, p: Progress) -> None:
        if self.quiet:
            return
        if p.stage != self._stage:
            self._finish_bar()
            self._stage = p.stage
            if not self.bars:
                self.stream.write(f"ctrlspeak: {_LABELS.get(p.stage, p.stage)}: {p.message}\n")
                self.stream.flush()
                return
            self._open_bar(p)
        if self._bar is not None:
            self._update_bar(p)

    def _open_bar(self, p: Progress) -> None:
        from tqdm.std import tqdm

        desc = _LABELS.get(p.stage, p.stage)
        if p.unit == "B":
            self._bar = tqdm(total=p.total, desc=desc, unit="B", unit_scale=True, unit_divisor=1024,
                             file=self.stream, leave=False, dynamic_ncols=True)
        else:
            self._bar = tqdm(total=100, desc=desc, bar_format="{desc}: {percentage:3.0f}%|{bar}| {postfix}",
                             file=self.stream, leave=False, dynamic_ncols=True)

    def _update_bar(self, p: Progress) -> None:
        bar = self._bar
        if p.unit == "B" and p.done is not None:
            if p.total and bar.total != p.total:
                bar.total = p.total
            bar.n = p.done
        elif p.fraction is not None:
            bar.n = round(100 * p.fraction)
        if p.message and p.unit != "B":
            bar.set_postfix_str(p.message, refresh=False)
        bar.refresh()

    def _finish_bar(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def close(self) -> None:
        self._finish_bar()
