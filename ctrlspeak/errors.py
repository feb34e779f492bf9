"""Errors with stable codes.

Every failure that a person can see carries a stable ``code`` (never parsed from the
message), a one-line ``hint`` saying what to do next, and a CLI exit status. Errors cross
the process boundary as :class:`ctrlspeak.ipc.Failure` messages holding the code and the
traceback text; :func:`from_code` rebuilds the right exception type on the other side.

This module is imported by both processes, so it must stay free of heavy imports.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ErrorInfo:
    code: str
    exit_status: int
    hint: str


# One row per code. Exit statuses are stable too: scripts may branch on them.
_TABLE: tuple[ErrorInfo, ...] = (
    ErrorInfo("ERR_INTERNAL", 1, "this is a bug in ctrlspeak; run with --verbose and report the traceback"),
    ErrorInfo("ERR_USAGE", 2, "see `ctrlspeak --help`"),
    ErrorInfo("ERR_MODEL_NOT_FOUND", 10, "run `ctrlspeak models list` to see valid names, or give an org/name Hugging Face id or a path to a .nemo file"),
    ErrorInfo("ERR_MODEL_NOT_CACHED", 11, "fetch it while online with `ctrlspeak models download NAME`, or pick a cached model (`ctrlspeak models list`)"),
    ErrorInfo("ERR_MODEL_LOAD", 12, "the model file is unreadable or corrupt: download it again (`ctrlspeak models download NAME --force`) or pick another model"),
    ErrorInfo("ERR_MODEL_DOWNLOAD", 13, "check the network connection and the model id, then retry `ctrlspeak models download NAME`"),
    ErrorInfo("ERR_AUDIO_FILE", 14, "give a readable WAV, FLAC or OGG file"),
    ErrorInfo("ERR_AUDIO_INVALID", 15, "the audio holds no usable samples (empty, or NaN/inf values); record again"),
    ErrorInfo("ERR_TRANSCRIBE", 16, "transcription failed inside the model; try again, or try another model"),
    ErrorInfo("ERR_WORKER_CRASHED", 17, "the transcription worker died; it is restarted automatically - if it keeps dying, check memory and `ctrlspeak doctor`"),
    ErrorInfo("ERR_WORKER_HUNG", 18, "the transcription worker stopped responding and was restarted; if this repeats, use a smaller model"),
    ErrorInfo("ERR_WORKER_BOOT", 19, "the transcription worker could not start; run `ctrlspeak doctor`"),
    ErrorInfo("ERR_DEVICE_UNAVAILABLE", 20, "the requested compute device is not available here; use --compute-device auto or --compute-device cpu"),
    ErrorInfo("ERR_AUDIO_DEVICE", 21, "check the microphone: `ctrlspeak devices` lists input devices; pick one with `ctrlspeak run --mic NAME` or input_device in the config"),
    ErrorInfo("ERR_PASTE_FAILED", 22, "the text is on the clipboard: paste it by hand; `ctrlspeak doctor` shows which paste tool is missing"),
    ErrorInfo("ERR_CONFIG", 23, "fix the config file (its path is in the message) or remove it to use defaults"),
    ErrorInfo("ERR_DAEMON_NOT_RUNNING", 24, "start the daemon with `ctrlspeak run` or `ctrlspeak service install`"),
    ErrorInfo("ERR_CANCELLED", 25, "the request was cancelled"),
    ErrorInfo("ERR_HOTKEY_UNAVAILABLE", 26, "global keys need an X11 display; bind `ctrlspeak toggle` to a desktop shortcut instead"),
    ErrorInfo("ERR_SERVICE", 27, "see `ctrlspeak service status`; on Linux `journalctl --user -u ctrlspeak` has the log"),
    ErrorInfo("ERR_JOURNAL", 28, "free space in the state directory (or fix its permissions); until then recordings are kept in memory only, and the journal is tried again at the next recording"),
    ErrorInfo("ERR_HISTORY", 29, "free space in the data directory, or fix its permissions or lock; the recording stays in the journal and goes to history once it can"),
    ErrorInfo("ERR_NOTHING_KEPT", 30, "set keep_recordings = N in the config to keep the last N recordings for `ctrlspeak retry`"),
    ErrorInfo("ERR_STREAM", 32, "live text starts again from the open segment; the final text does not depend on it"),
    ErrorInfo("ERR_DISK_SPACE", 31, "free some disk space, or point HF_HUB_CACHE at a bigger disk, then run the download again"),
)

_BY_CODE: dict[str, ErrorInfo] = {info.code: info for info in _TABLE}


def info_for(code: str) -> ErrorInfo:
    return _BY_CODE.get(code, _BY_CODE["ERR_INTERNAL"])


def all_codes() -> tuple[str, ...]:
    return tuple(_BY_CODE)


class CtrlspeakError(Exception):
    """Base of every error a user may see. Subclasses pin ``code``."""

    code = "ERR_INTERNAL"

    def __init__(self, message: str, *, hint: str | None = None, detail: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self._hint = hint
        #: traceback text from the process where the error was raised, if it crossed a boundary
        self.detail = detail

    @property
    def hint(self) -> str:
        return self._hint or info_for(self.code).hint

    @property
    def exit_status(self) -> int:
        return info_for(self.code).exit_status

    def one_line(self) -> str:
        return f"{self.code}: {self.message} ({self.hint})"


class UsageError(CtrlspeakError):
    code = "ERR_USAGE"


class ModelError(CtrlspeakError):
    code = "ERR_MODEL_LOAD"


class ModelNotFound(ModelError):
    code = "ERR_MODEL_NOT_FOUND"


class ModelNotCached(ModelError):
    code = "ERR_MODEL_NOT_CACHED"


class ModelLoadError(ModelError):
    code = "ERR_MODEL_LOAD"


class ModelDownloadError(ModelError):
    code = "ERR_MODEL_DOWNLOAD"


class DiskSpaceError(ModelError):
    code = "ERR_DISK_SPACE"


class AudioError(CtrlspeakError):
    code = "ERR_AUDIO_FILE"


class AudioFileError(AudioError):
    code = "ERR_AUDIO_FILE"


class AudioInvalid(AudioError):
    code = "ERR_AUDIO_INVALID"


class AudioDeviceError(AudioError):
    code = "ERR_AUDIO_DEVICE"


class TranscribeError(CtrlspeakError):
    code = "ERR_TRANSCRIBE"


class WorkerError(CtrlspeakError):
    code = "ERR_WORKER_CRASHED"


class WorkerCrashed(WorkerError):
    code = "ERR_WORKER_CRASHED"


class WorkerHung(WorkerError):
    code = "ERR_WORKER_HUNG"


class WorkerBootError(WorkerError):
    code = "ERR_WORKER_BOOT"


class DeviceUnavailable(CtrlspeakError):
    code = "ERR_DEVICE_UNAVAILABLE"


class StreamError(CtrlspeakError):
    """A piece of live audio the worker's stream cannot take (out of place, or a chunk size
    the model does not offer)."""

    code = "ERR_STREAM"


class PasteFailed(CtrlspeakError):
    code = "ERR_PASTE_FAILED"


class ConfigError(CtrlspeakError):
    code = "ERR_CONFIG"


class DaemonNotRunning(CtrlspeakError):
    code = "ERR_DAEMON_NOT_RUNNING"


class Cancelled(CtrlspeakError):
    code = "ERR_CANCELLED"


class HotkeyUnavailable(CtrlspeakError):
    code = "ERR_HOTKEY_UNAVAILABLE"


class ServiceError(CtrlspeakError):
    code = "ERR_SERVICE"


class JournalError(CtrlspeakError):
    """The audio journal cannot be written: recordings are then in memory only."""

    code = "ERR_JOURNAL"


class HistoryError(CtrlspeakError):
    """The history database cannot be written (disk full, locked, read-only)."""

    code = "ERR_HISTORY"


class NothingKept(CtrlspeakError):
    """`ctrlspeak retry` found no kept recording."""

    code = "ERR_NOTHING_KEPT"


def _most_specific() -> dict[str, type[CtrlspeakError]]:
    found: dict[str, type[CtrlspeakError]] = {}
    stack: list[type[CtrlspeakError]] = [CtrlspeakError]
    while stack:
        cls = stack.pop(0)
        # breadth first, so a subclass that re-pins its parent's code wins: it is more specific
        found[cls.code] = cls
        stack.extend(cls.__subclasses__())
    return found


def from_code(code: str, message: str, detail: str | None = None, hint: str | None = None) -> CtrlspeakError:
    """Rebuild an error received as a code (from another process or the socket)."""
    cls = _most_specific().get(code, CtrlspeakError)
    err = cls(message, detail=detail, hint=hint)
    if cls is CtrlspeakError and code in _BY_CODE:
        err.code = code  # an instance-level code keeps unknown-to-this-side codes intact
    return err
