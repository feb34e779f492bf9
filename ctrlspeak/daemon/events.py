"""The events other threads post to the daemon's inbox; the loop handles one at a time.

Every thread but the loop's (hotkey listener, control socket, recorder, supervisor, signal
relay, tray) only ever makes one of these and puts it in the inbox: that is how the loop
stays the one owner of the daemon's state.
"""
from __future__ import annotations

import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ctrlspeak import errors
from ctrlspeak.ipc import ModelRef, Progress, WorkerReady
from ctrlspeak.supervision.worker_state import WorkerState

@dataclass(frozen=True)
class HotkeyPressed:
    """The hotkey listener saw a tap, a hold or the arming of a tap sequence."""

    event: Any
    #: when the tap happened: a stop's latency counts from here, not from when the loop got to it
    at: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class Command:
    """A control-socket or tray command; ``reply`` gets exactly one result or error."""

    request: dict[str, Any]
    reply: Future
    at: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class AudioIn:
    """A block of microphone audio (float32, 16 kHz)."""

    audio: np.ndarray


@dataclass(frozen=True)
class MicStalled:
    """The microphone stopped delivering audio."""

    reason: str


@dataclass(frozen=True)
class KeysNotice:
    """A key source has something to tell the person later than its start (the desktop
    portal's answer about the shortcut, which may wait on a dialog)."""

    message: str


@dataclass(frozen=True)
class SegmentDone:
    """The worker answered one segment of a recording."""

    session: str
    index: int
    future: Future


@dataclass(frozen=True)
class LiveDecodeDone:
    """The worker answered a decode of a recording's open segment (live text)."""

    session: str
    index: int
    future: Future


@dataclass(frozen=True)
class WorkerProgress:
    """The worker's loading (or download) progress."""

    progress: Progress


@dataclass(frozen=True)
class WorkerIsReady:
    """A worker has its model loaded and answers requests."""

    ready: WorkerReady


@dataclass(frozen=True)
class WorkerStateChanged:
    """The supervisor published a new WorkerState."""

    state: WorkerState


@dataclass(frozen=True)
class WorkerTrouble:
    """The worker failed: it is restarted, or (``final``) the supervisor gave up."""

    error: errors.CtrlspeakError
    final: bool


@dataclass(frozen=True)
class ModelSwitched:
    """A model switch ended (``future`` holds the new WorkerReady or the error)."""

    ref: ModelRef
    future: Future


@dataclass(frozen=True)
class SignalReceived:
    """SIGINT, SIGTERM or SIGHUP, as the signal relay posted it (or the tray's Quit)."""

    signum: int
