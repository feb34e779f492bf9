"""The worker's state as its one owner, the Supervisor, publishes it.

A :class:`WorkerState` is frozen: the supervisor makes a new one at every transition
(under its lock, with a higher ``version``), keeps it as ``Supervisor.state`` and hands it
to its ``on_state`` callback. Nobody else keeps a copy built from callbacks; the daemon
keeps the newest state it was handed, so it acts on the worker's state in the order its
events arrive (see ``Daemon.worker_state``).

Phases::

    starting ──> ready ──> switching ──> ready             (in place: the old model answers meanwhile)
       │           ├─────> unloaded ──> reloading ──> ready   (keep-alive; a switch from here reloads too)
       │           └─────> restarting ──> ready            (a crash or a hang: backoff, a new worker)
       ├─────────────────> restarting ──> ...              (a boot that failed, tried again)
       └──> gave_up  (a permanent error, or too many failed boots)
              ├──> switching ──> ready                     (a fresh worker on another model)
              └──> restarting ──> ready                    (``retry()``: the same model again)
    any ──> closed

"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ctrlspeak import errors
from ctrlspeak.ipc import ModelRef, WorkerReady

WorkerPhase = Literal["starting", "ready", "switching", "reloading", "restarting", "gave_up", "unloaded", "closed"]

#: what started the worker that is booting or ready
BootCause = Literal["start", "restart", "reload", "switch", "retry"]


@dataclass(frozen=True)
class WorkerState:
    phase: WorkerPhase
    #: the model the worker runs (or boots with); a switch changes it once the new model is ready
    model: ModelRef | None = None
    #: the worker process (None while none runs: unloaded, closed)
    pid: int | None = None
    #: the ready worker's report; set while requests are answered (also during an in-place switch)
    ready: WorkerReady | None = None
    #: why the worker is restarting, or why the supervisor gave up (None once a worker is ready)
    error: errors.CtrlspeakError | None = None
    #: the model a switch in flight loads (None when no switch is)
    switching_to: ModelRef | None = None
    booted_by: BootCause = "start"
    #: the ready worker is the first ever ready and did not answer a switch (kept until the next boot)
    first_ready: bool = False
    #: grows at every transition: the newer of two states has the higher version
    version: int = 0

    @property
    def model_name(self) -> str:
        return self.model.name if self.model is not None else ""

    @property
    def gave_up(self) -> errors.CtrlspeakError | None:
        """The error the supervisor gave up on (no worker runs until a switch or a retry)."""
        return self.error if self.phase == "gave_up" else None

    @property
    def reloading(self) -> bool:
        """A worker is booting again after an unload (by reload(), or a switch made while unloaded)."""
        return self.booted_by == "reload" and self.ready is None and self.phase in ("reloading", "switching")
