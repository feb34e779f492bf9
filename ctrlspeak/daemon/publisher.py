"""What the daemon has said: its status bus, and the snapshot ``ctrlspeak status`` reads.

The loop owns one :class:`Publisher` and is its only caller (progress too arrives through the
inbox), so there is no lock: a late "loading 100%" is published before or after "ready", never
in between. The snapshot is replaced whole on every event, so a control thread that reads it
(``status`` is answered at once, off the loop) sees one moment, never half of one.

The words themselves never go on the status bus (its sinks write logs, notifications and
systemd's STATUS=): live text (:class:`~ctrlspeak.daemon.live_text.Partial`) goes only to the
text sinks, the control socket's followers, which only the user's own uid can connect to.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

from ctrlspeak import errors
from ctrlspeak.daemon.live_text import Partial
from ctrlspeak.daemon.model_view import REFRESH, Say
from ctrlspeak.daemon.status import StatusBus, StatusEvent
from ctrlspeak.supervision.worker_state import WorkerState

log = logging.getLogger(__name__)


def daemon_state(*, recording: bool, finishing: bool, unloaded: bool, worker: WorkerState) -> str:
    """The one word ``status`` and the tray show, from what the loop's parts hold now."""
    if recording:
        return "recording"
    if finishing:
        return "transcribing"
    if unloaded:
        return "idle"
    if worker.ready is not None:
        return "ready"
    return "error" if worker.gave_up is not None else "loading"


class Publisher:
    def __init__(self, state: Callable[[], str], worker: Callable[[], dict[str, Any]],
                 model_name: Callable[[], str], *, console: bool) -> None:
        """``state()`` is the daemon's word now, ``worker()`` the worker's part of the snapshot
        (:meth:`~ctrlspeak.daemon.worker_link.WorkerLink.snapshot`); with ``console`` the
        console line shows errors, so the log does not print them on stderr a second time."""
        self.bus = StatusBus()
        self._state, self._worker, self._model_name = state, worker, model_name
        self._console = console
        self._snapshot: dict[str, Any] = {"state": "loading"}
        self._text_sinks: list[Callable[[dict[str, Any]], None]] = []

    def add_text_sink(self, sink: Callable[[dict[str, Any]], None]) -> None:
        self._text_sinks.append(sink)

    def partial(self, partial: Partial | None) -> None:
        """Live text, to the text sinks only (None: nothing changed)."""
        if partial is None:
            return
        event = {**partial.to_json(), "model": self._model_name()}
        for sink in self._text_sinks:
            try:
                sink(event)
            except Exception:  # noqa: BLE001 - a sink must not cost the dictation
                log.exception("live text sink failed")

    def publish(self, event: StatusEvent) -> None:
        self.refresh(event)
        self.bus.publish(event)

    def error(self, exc: errors.CtrlspeakError) -> None:
        log.error("%s", exc.one_line(), extra={"on_console": self._console})
        self.publish(StatusEvent("error", exc.message, code=exc.code, hint=exc.hint, model=self._model_name()))

    def say(self, items: list[Say]) -> None:
        """Publish what :class:`~ctrlspeak.daemon.model_view.ModelView` decided to say."""
        for item in items:
            if item == REFRESH:
                self.refresh()
            elif isinstance(item, errors.CtrlspeakError):
                self.error(item)
            else:
                self.publish(item)

    def refresh(self, event: StatusEvent | None = None) -> None:
        """Take the state in again; ``last`` is ``event``, or the last one published."""
        event = event or self.bus.last or StatusEvent(self._state())
        worker = self._worker()
        self._snapshot = {"state": self._state(), "model": worker.pop("model"),
                          "worker_ready": worker.pop("worker_ready"), "unloaded": worker.pop("unloaded"),
                          "pid": os.getpid(), "worker_pid": worker.pop("worker_pid"), "last": event.to_json(),
                          **worker}

    def settle(self) -> None:
        """Back to "ready" once a dictation is over (a tray's bar follows the last event)."""
        if self._state() == "ready":
            self.publish(StatusEvent("ready", "", model=self._model_name(), quiet=True))

    def snapshot(self) -> dict[str, Any]:
        return dict(self._snapshot)
