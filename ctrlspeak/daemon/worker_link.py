"""The daemon's link to its worker: the Supervisor it starts, the newest WorkerState, the ModelView.

The loop owns one :class:`WorkerLink`. The supervisor owns the worker's state and publishes it
(an event in the inbox, and its ``state`` property); the link keeps the newest one the loop has
handled, so what the loop publishes never runs ahead of what it has announced (a "ready" is not
shown before the loading lines queued ahead of it). After the loop's own calls into the
supervisor (start, unload, reload, switch, retry) it reads the state at once: that change is the
loop's to act on.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import numpy as np

from ctrlspeak.daemon.events import WorkerIsReady, WorkerProgress, WorkerStateChanged, WorkerTrouble
from ctrlspeak.daemon.model_view import ModelView
from ctrlspeak.ipc import ModelRef, TranscribeOptions, Transcript, WorkerReady, WorkerSettings
from ctrlspeak.supervision.supervisor import SpeedEstimate, Supervisor
from ctrlspeak.supervision.worker_state import WorkerState

log = logging.getLogger(__name__)

#: after these boot errors a new dictation tries the download again (the partial is kept)
RETRY_DOWNLOAD_ON = ("ERR_MODEL_DOWNLOAD", "ERR_DISK_SPACE", "ERR_MODEL_NOT_CACHED")


class WorkerLink:
    def __init__(self) -> None:
        self.supervisor: Supervisor | None = None
        #: the supervisor's state as of the last event the loop handled
        self.state = WorkerState("starting")
        self.view = ModelView()  # what is said about the model, and its download

    def start(self, settings: Callable[[ModelRef], WorkerSettings], ref: ModelRef, *,
              post: Callable[[Any], None], speed: SpeedEstimate) -> None:
        """Make the supervisor (every callback posts to the loop); :meth:`launch` starts it."""
        self.view.reset()
        self.supervisor = Supervisor(
            settings, ref,
            on_progress=lambda p: post(WorkerProgress(p)),
            on_ready=lambda r: post(WorkerIsReady(r)),
            on_trouble=lambda exc, final: post(WorkerTrouble(exc, final)),
            on_state=lambda state: post(WorkerStateChanged(state)),
            speed=speed,
        )
        self.state = self.supervisor.state

    def launch(self) -> None:
        assert self.supervisor is not None
        self.supervisor.start()
        self.read()

    def take(self, state: WorkerState) -> None:
        # an event posted before the loop read a newer state itself is already included in it
        if state.version > self.state.version:
            self.state = state

    def read(self) -> None:
        if self.supervisor is not None:
            self.take(self.supervisor.state)

    @property
    def model_name(self) -> str:
        return self.state.model_name

    @property
    def unloaded(self) -> bool:
        """The keep-alive stopped the worker; the next tap (or submit, or switch) reloads it."""
        return self.state.phase == "unloaded"

    @property
    def unloadable(self) -> bool:
        """The worker is loaded, ready, and no model switch is in flight."""
        ws = self.state
        return (self.supervisor is not None and not self.unloaded and ws.ready is not None
                and ws.switching_to is None)

    def submit(self, audio: np.ndarray, options: TranscribeOptions) -> Future[Transcript]:
        assert self.supervisor is not None
        return self.supervisor.submit(audio, options)

    def unload(self) -> bool:
        """False when a request is still pending there (try again later)."""
        assert self.supervisor is not None
        if not self.supervisor.unload():
            return False
        self.read()
        return True

    def reload(self) -> bool:
        """Start the unloaded worker again; False when it is not unloaded."""
        if not self.unloaded or self.supervisor is None:
            return False
        self.supervisor.reload()
        self.read()
        return True

    def retry(self) -> None:
        """A fresh worker on the same model after giving up (a download continues where it stopped)."""
        assert self.supervisor is not None
        self.view.reset()
        self.supervisor.retry()
        self.read()

    def switch(self, ref: ModelRef) -> Future[WorkerReady]:
        assert self.supervisor is not None
        self.view.reset()
        future = self.supervisor.switch(ref)  # while unloaded it starts a fresh worker: a reload
        self.read()
        return future

    def kill(self) -> None:
        if self.supervisor is not None:
            self.supervisor.kill_worker()

    def close(self, timeout: float) -> None:
        if self.supervisor is not None:
            self.supervisor.close(timeout=timeout)

    def before_recording(self) -> str:
        """A recording starts: after a download gave up, try it again (it continues where it
        stopped; the network or the disk may have been fixed). Returns what the recording
        waits for ("" when the model is ready for it)."""
        gave_up, model = self.state.gave_up, self.state.model
        if (gave_up is None or gave_up.code not in RETRY_DOWNLOAD_ON
                or model is None or model.source != "hf"):
            return self.waiting_for()
        log.info("dictation while %s is not downloaded: trying the download again", self.model_name)
        self.retry()  # ready arrives as usual
        return f"trying to download {self.model_name} again"

    def waiting_for(self) -> str:
        """What a recording made now waits for ("" when the model is ready to transcribe it)."""
        return self.view.waiting_for(self.state, self.unloaded)

    def downloading(self) -> bool:
        return self.view.downloading(self.state)

    def snapshot(self) -> dict[str, Any]:
        """The worker's part of ``ctrlspeak status``."""
        ws = self.state
        out: dict[str, Any] = {"model": ws.model_name, "worker_ready": ws.ready is not None,
                               "unloaded": self.unloaded,
                               "worker_pid": self.supervisor.pid if self.supervisor else None}
        if ws.ready is not None:
            out["engine"] = ws.ready.engine
        if ws.gave_up is not None and ws.ready is None:
            out["error"] = {"code": ws.gave_up.code, "message": ws.gave_up.message, "hint": ws.gave_up.hint}
        out.update(self.view.snapshot(ws))
        return out
