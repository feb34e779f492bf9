"""What the daemon says about its model: the loading bar, the download, ready, back, trouble.

A presenter with no side effects: the loop hands it the supervisor's newest
:class:`~ctrlspeak.supervision.worker_state.WorkerState` and what the daemon is busy with, and
it answers with what to publish (status events, errors to report, or :data:`REFRESH` for
"update ``ctrlspeak status`` quietly"). It owns one piece of state, the model's download
(:class:`~ctrlspeak.daemon.download_view.DownloadView`) while the worker fetches it.
"""
from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Union

from ctrlspeak import errors
from ctrlspeak.daemon.download_view import DownloadView
from ctrlspeak.daemon.status import StatusEvent
from ctrlspeak.ipc import Progress, WorkerReady
from ctrlspeak.supervision.worker_state import WorkerState

#: share of the loading bar per stage (download only happens for uncached models)
STAGE_SPAN = {"download": (0.0, 40.0), "import": (40.0, 70.0), "restore": (70.0, 95.0), "warmup": (95.0, 100.0)}

#: "refresh the status snapshot, announce nothing"
REFRESH = "refresh"

Say = Union[StatusEvent, errors.CtrlspeakError, str]


@dataclass(frozen=True)
class Busy:
    """What the daemon is doing, as far as announcing the model is concerned."""

    recording: bool
    finishing: bool
    #: the daemon's state now ("recording", "transcribing", "ready"...)
    state: str

    @property
    def idle(self) -> bool:
        return not self.recording and not self.finishing


class ModelView:
    def __init__(self) -> None:
        self.download = DownloadView()  # the model's download, while the worker fetches it

    def reset(self) -> None:
        """A new load begins (start, switch, retry, ready): the download is counted afresh."""
        self.download = DownloadView()

    def downloading(self, ws: WorkerState) -> bool:
        return self.download.active and ws.ready is None

    def waiting_for(self, ws: WorkerState, unloaded: bool) -> str:
        """What a recording made now waits for ("" when the model is ready to transcribe it)."""
        if ws.ready is not None or unloaded:
            return ""
        name = ws.model_name
        if self.downloading(ws):
            return self.download.waiting(name)
        if ws.gave_up is not None:
            return f"{name} could not be loaded ({ws.gave_up.code})"
        return f"{name} is still loading"

    def snapshot(self, ws: WorkerState) -> dict[str, Any]:
        """The download's numbers for ``ctrlspeak status``, while there is one."""
        if self.downloading(ws) or (ws.switching_to is not None and self.download.active):
            return {"download": self.download.to_json()}
        return {}

    def progress(self, p: Progress, ws: WorkerState, busy: Busy, now: float) -> list[Say]:
        if p.stage == "download" and p.unit == "B" and p.done is not None and (ws.ready is None or ws.switching_to):
            return self._download(p, ws, busy, now)
        if p.stage == "transcribe" or ws.ready is not None:
            return []
        if ws.reloading and not busy.idle:
            return []  # a reload under a recording: "recording"/"transcribing" stays on show
        lo, hi = STAGE_SPAN.get(p.stage, (0.0, 100.0))
        percent = lo + (hi - lo) * (p.fraction or 0.0)
        return [StatusEvent("loading", p.message, percent=round(percent, 1), model=ws.model_name, stage=p.stage)]

    def _download(self, p: Progress, ws: WorkerState, busy: Busy, now: float) -> list[Say]:
        """Bytes of the model arriving: the live line (tray, console, followers) and the
        notices :class:`DownloadView` decides on. A recording keeps its own state on show."""
        name = ws.switching_to.name if ws.switching_to is not None else ws.model_name
        said = self.download.feed(p, now, name, quiet=busy.recording)
        if not said.line:  # `ctrlspeak status` still gets the latest numbers
            return [REFRESH]
        fields: dict[str, Any] = {"model": name, **self.download.to_json()}
        if busy.finishing:
            out: list[Say] = [StatusEvent("transcribing", f"your recording is kept and waits for {name}", **fields)]
        else:
            out = [StatusEvent("loading", p.message, **fields)]
        if said.notice:
            out.append(StatusEvent("notice", said.notice, model=name))
        return out

    def ready(self, ready: WorkerReady, ws: WorkerState, busy: Busy) -> tuple[str, list[Say]]:
        """The log line's text and what to announce when a worker gets ready."""
        # the state that made this worker ready came before this event (the supervisor sends it first)
        first, reloaded = ws.first_ready, ws.booted_by == "reload"
        message = f"{ready.model} on {ready.device}, loaded in {ready.load_s + ready.import_s:.1f} s"
        message += self.download.summary()
        self.reset()
        if busy.recording:
            # "ready" now would be a lie (and a "ctrlspeak is ready" notification while the
            # microphone records): the recording's state stays, the worker's readiness is beside it.
            # A kept recording that only waited for the model is different: the person who waited
            # through a download is told it is ready, and the text follows.
            if reloaded:
                return message, [REFRESH]
            listening = "listening; " if busy.state == "recording" else ""
            return message, [StatusEvent(busy.state, f"{listening}the worker is {'ready' if first else 'back'} "
                                                     f"({message})", model=ready.model)]
        if reloaded:
            return message, [StatusEvent("ready", f"reloaded {message}", model=ready.model)]
        return message, [StatusEvent("ready", message if first else f"worker restarted; {message}",
                                     model=ready.model)]

    def trouble(self, error: errors.CtrlspeakError, final: bool, ws: WorkerState, busy: Busy) -> list[Say]:
        # the worker state (restarting, or gave up: the person can switch model with
        # `ctrlspeak model NAME`) came before this event; here it is told
        if not final and not busy.idle:
            goes_on = "the recording goes on" if busy.recording else "its audio is sent again"
            error = type(error)(f"{error.message}; {goes_on} and nothing is lost", hint=error.hint)
        out: list[Say] = [error]
        if busy.recording and not final:  # the recording's state stays on show
            out.append(StatusEvent("recording", "listening; the worker is restarting", model=ws.model_name))
        return out

    def switched(self, future: Future, ws: WorkerState) -> list[Say]:
        # the supervisor's state (the new model, or the old one kept) came before this event
        try:
            ready = future.result()
        except errors.CtrlspeakError as exc:
            if ws.ready is not None:
                return [exc, StatusEvent("ready", f"still using {ws.model_name}", model=ws.model_name)]
            return [exc]
        return [StatusEvent("ready", f"switched to {ready.model}", model=ready.model)]
