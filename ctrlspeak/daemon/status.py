"""One stream of status events, fanned out to sinks.

The daemon publishes :class:`StatusEvent` values from its main loop. Sinks are the
terminal line, desktop notifications, the tray icon, the control socket's followers and
systemd's STATUS=. A sink that can block (D-Bus, a tray toolkit) runs behind a
:class:`ThreadedSink`, so publishing never waits on it, and a sink that fails is logged
and skipped: a missing notification server must not stop dictation.
"""
from __future__ import annotations

import dataclasses
import logging
import queue
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any, Literal, get_args

from ctrlspeak.transfer import LineThrottle, Transfer
from ctrlspeak.transfer import describe as describe_transfer

log = logging.getLogger(__name__)

#: what a status event can say; a sink (tray icon, console line, `status --json` readers) knows each
State = Literal["loading", "ready", "idle", "recording", "transcribing", "done", "error", "notice"]
STATES: tuple[str, ...] = get_args(State)


@dataclass(frozen=True)
class StatusEvent:
    state: State
    message: str = ""
    #: model loading progress, 0-100
    percent: float | None = None
    #: the loading stage ("download", "import", "restore", "warmup"; see ipc.Stage)
    stage: str | None = None
    #: the stop tap (or command) to the text at the cursor: the paste keystroke, not the
    #: clipboard restore after it
    latency_s: float | None = None
    code: str | None = None
    hint: str | None = None
    model: str | None = None
    #: transcript length in words (the text itself never goes on the status channel)
    words: int | None = None
    #: the worker's compute that latency_s waited for (after the stop: normally the last
    #: segment's), so latency_s minus this is the daemon's own overhead (queues, IPC,
    #: segmentation, joining, output)
    compute_s: float | None = None
    #: a state change for bars and the tray that is not announced to the person: no
    #: notification, no line in a log (back to "ready" after a dictation)
    quiet: bool | None = None
    #: a model download (state "loading"): bytes so far, the file's size, bytes per second
    #: and seconds left, the last two once they can be told (ctrlspeak.transfer)
    done_bytes: int | None = None
    total_bytes: int | None = None
    rate_bps: float | None = None
    eta_s: float | None = None
    time: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        # a misspelt state would reach every sink as an unknown one (the tray shows no icon for it)
        if self.state not in STATES:
            raise ValueError(f"unknown status state {self.state!r}; one of {', '.join(STATES)}")

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


Sink = Callable[[StatusEvent], None]


class StatusBus:
    def __init__(self) -> None:
        self._sinks: list[tuple[str, Sink]] = []
        self.last: StatusEvent | None = None

    def add(self, name: str, sink: Sink) -> None:
        self._sinks.append((name, sink))

    def publish(self, event: StatusEvent) -> None:
        self.last = event
        for name, sink in self._sinks:
            try:
                sink(event)
            except Exception:
                log.exception("status sink %s failed", name)


class ThreadedSink:
    """Runs a blocking sink on its own thread with a bounded backlog (oldest dropped)."""

    def __init__(self, name: str, sink: Sink, backlog: int = 32) -> None:
        self._sink = sink
        self._queue: queue.Queue[StatusEvent | None] = queue.Queue(backlog)
        self._thread = threading.Thread(target=self._run, name=f"sink-{name}", daemon=True)
        self._thread.start()
        self.name = name

    def __call__(self, event: StatusEvent) -> None:
        while True:
            try:
                self._queue.put_nowait(event)
                return
            except queue.Full:
                try:
                    self._queue.get_nowait()
                except queue.Empty:
                    pass

    def close(self, timeout: float = 2.0) -> None:
        try:
            self._queue.put(None, timeout=timeout)
        except queue.Full:
            return
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            event = self._queue.get()
            if event is None:
                return
            try:
                self._sink(event)
            except Exception:
                log.exception("status sink %s failed", self.name)


_ICONS = {"loading": "…", "ready": "✓", "idle": "·", "recording": "●", "transcribing": "⋯",
          "done": "✓", "error": "✗", "notice": "!"}


def describe(event: StatusEvent) -> str:
    """The one-line, human form of an event (the console line, the tray tooltip)."""
    text = event.state
    if event.done_bytes is not None:  # a download: "loading", or a recording "transcribing" waits for it
        t = Transfer(event.done_bytes, event.total_bytes, event.rate_bps, event.eta_s)
        what = event.message or f"downloading {event.model or 'the model'}"
        complete = t.total is not None and t.done >= t.total
        return what if complete and event.message else f"{what}: {describe_transfer(t)}"
    if event.state == "loading" and event.percent is not None:
        text = f"loading {event.model or 'model'} {event.percent:3.0f}%"
    elif event.state == "done" and event.latency_s is not None:
        text = f"done in {event.latency_s:.2f} s"
    elif event.state == "error" and event.code:
        text = f"error {event.code}"
    if event.message:
        text = f"{text}: {event.message}"
    if event.hint and event.state == "error":
        text = f"{text} ({event.hint})"
    return text


def live_line(event: dict[str, Any], width: int, mark: tuple[str, str] = ("[", "]")) -> str:
    """A partial event's text on one line of about ``width`` characters: the end is kept (the
    words being said now), and the tentative tail is set apart between ``mark``."""
    final, tentative = event.get("final", ""), event.get("tentative", "")
    sep = " " if final and tentative else ""
    text, split = final + sep + tentative, len(final) + len(sep)
    start = len(text) - width + 1 if len(text) > width else 0
    head = ("…" if start else "") + text[start:max(start, split)]
    tail = text[max(start, split):]
    return head + (f"{mark[0]}{tail}{mark[1]}" if tail else "")


class ConsoleLine:
    """A live one-line status on a terminal; plain lines when not a terminal.

    Plain lines (journald, a log file) show loading as one line per stage, and one more
    each time it moves on by ``LOADING_STEP`` percent within a stage (a long download), so
    a slow start is never a silent 0 %."""

    LOADING_STEP = 5.0

    def __init__(self, stream: IO[str] | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self._stream = stream or sys.stderr
        self._tty = self._stream.isatty()
        self._loading_shown: tuple[str | None, float] | None = None  # (stage, percent) last written
        self._clock = clock
        self._download_lines = LineThrottle()
        self._download_message = ""

    def __call__(self, event: StatusEvent) -> None:
        line = f"{_ICONS.get(event.state, ' ')} ctrlspeak: {describe(event)}"
        if self._tty:
            keep = event.state in ("error", "notice", "done")
            self._stream.write("\r\x1b[2K" + line + ("\n" if keep else ""))
        else:
            if event.quiet:
                return
            if event.done_bytes is not None:
                # a download may take minutes: a line every 10 % (or 15 s), and every new step
                due = self._download_lines.due(self._clock(), event.percent)
                changed, self._download_message = event.message != self._download_message, event.message
                if not (due or changed):
                    return
            elif event.state != "loading":
                self._loading_shown = None  # the next load (a restart, a switch) starts afresh
            elif not self._loading_news(event):
                return  # keep logs short: a line per stage, and per step in a long one
            self._stream.write(line + "\n")
        self._stream.flush()

    def live_text(self, event: dict[str, Any]) -> None:
        """A partial event, on a terminal only: plain lines go to logs, and words never do."""
        if not self._tty:
            return
        import shutil

        width = max(20, shutil.get_terminal_size().columns - 16)
        self._stream.write("\r\x1b[2K● ctrlspeak: " + live_line(event, width, ("\x1b[2m", "\x1b[22m")))
        self._stream.flush()

    def _loading_news(self, event: StatusEvent) -> bool:
        percent = event.percent if event.percent is not None else 0.0
        last = self._loading_shown
        news = (last is None or event.stage != last[0] or percent >= last[1] + self.LOADING_STEP
                or (percent >= 100.0 > last[1]))
        if news:
            self._loading_shown = (event.stage, percent)
        return news
