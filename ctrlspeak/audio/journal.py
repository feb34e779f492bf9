"""The audio journal: every recording is on disk while it is being made.

Layout, in ``<user state dir>/journal`` (mode 0700, files 0600)::

    <id>.partial.f32 + <id>.partial.json   being recorded (raw float32 16 kHz mono, appended)
    <id>.f32 + <id>.json                    complete: fsynced, then committed by atomic rename
    kept/<id>.f32 + kept/<id>.json          kept after success, when keep_recordings > 0

The audio is flushed to the OS about once a second while recording and fsynced at the
stop tap. An entry is removed only after its transcript is committed to history. Entries
still here at start-up were left by a crash or a power loss: the daemon transcribes them.
Raw float32 needs no header, so a file cut short by a crash is still readable up to its
last whole sample.
"""
from __future__ import annotations

import json
import logging
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ctrlspeak import errors
from ctrlspeak.fileutil import atomic_write
from ctrlspeak.ipc import SAMPLE_RATE

log = logging.getLogger(__name__)

FLUSH_EVERY_S = 1.0


def default_dir() -> Path:
    from platformdirs import user_state_dir

    return Path(user_state_dir("ctrlspeak", appauthor=False)) / "journal"


@dataclass(frozen=True)
class EntryInfo:
    id: str
    audio_path: Path
    meta: dict[str, Any]
    complete: bool

    @property
    def audio_s(self) -> float:
        try:
            return self.audio_path.stat().st_size / 4 / SAMPLE_RATE
        except OSError:
            return 0.0

    @property
    def started_at(self) -> float:
        return float(self.meta.get("started_at", 0.0))


def _private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    if path.stat().st_uid == os.getuid():
        os.chmod(path, 0o700)
    return path


class Recording:
    """One recording being written. Its methods raise OSError (a full disk, say); the caller
    then calls :meth:`abandon` and keeps the audio in memory."""

    def __init__(self, journal: Journal, entry_id: str, meta: dict[str, Any]) -> None:
        self.id = entry_id
        self._journal = journal
        self._meta = meta
        self._audio = journal.dir / f"{entry_id}.partial.f32"
        self._file: Any = None
        fd = os.open(self._audio, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        self._file = os.fdopen(fd, "wb", buffering=256 * 1024)
        try:
            atomic_write(journal.dir / f"{entry_id}.partial.json", json.dumps(meta).encode())
        except OSError:
            self.abandon()
            raise
        self._last_flush = time.monotonic()
        self.samples = 0

    def append(self, audio: np.ndarray) -> None:
        self._file.write(np.asarray(audio, dtype="<f4").tobytes())
        self.samples += audio.size
        now = time.monotonic()
        if now - self._last_flush >= FLUSH_EVERY_S:
            self._file.flush()  # into the page cache: survives a crash of the daemon
            self._last_flush = now

    def commit(self, **extra: Any) -> EntryInfo:
        """fsync and rename into place: the recording is now complete on disk."""
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        meta = {**self._meta, **extra, "complete": True, "samples": self.samples}
        final = self._journal.dir / f"{self.id}.f32"
        os.replace(self._audio, final)
        atomic_write(self._journal.dir / f"{self.id}.json", json.dumps(meta).encode())
        _unlink(self._journal.dir / f"{self.id}.partial.json")
        return EntryInfo(self.id, final, meta, True)

    def discard(self) -> None:
        self._file.close()
        _unlink(self._audio)
        _unlink(self._journal.dir / f"{self.id}.partial.json")

    def abandon(self) -> None:
        """After a write failed: close and remove what was written, as far as the disk lets us.

        The recording goes on in memory. Left on disk, its partial files would be "recovered"
        at the next start as if a crash had left them, and its words stored twice; what cannot
        be removed now is recognised then by its id in history (see Daemon._recover)."""
        try:
            self._file.close()  # flushing the buffer fails again on a full disk; the fd is closed anyway
        except (OSError, AttributeError):
            pass
        for path in (self._audio, self._journal.dir / f"{self.id}.partial.json"):
            try:
                path.unlink(missing_ok=True)
            except OSError as exc:
                log.warning("could not remove the unfinished journal file %s: %s", path, exc)


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


class Journal:
    def __init__(self, directory: Path | None = None, keep: int = 0) -> None:
        self.dir = _private_dir(directory or default_dir())
        self.keep = keep

    def start(self, **meta: Any) -> Recording:
        entry_id = time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]
        return Recording(self, entry_id, {"id": entry_id, "started_at": time.time(), **meta})

    def leftovers(self) -> list[EntryInfo]:
        """Entries not yet transcribed into history (left by a crash), oldest first."""
        return sorted(self._scan(self.dir), key=lambda e: (e.started_at, e.id))

    def kept(self) -> list[EntryInfo]:
        return sorted(self._scan(self.dir / "kept"), key=lambda e: (e.started_at, e.id))

    def find(self, which: str) -> EntryInfo:
        entries = self.kept() + self.leftovers()
        if not entries:
            raise errors.NothingKept(f"no recordings are kept in the journal ({self.dir})")
        if which == "last":
            return max(entries, key=lambda e: (e.started_at, e.id))
        for entry in entries:
            if entry.id == which:
                return entry
        raise errors.NothingKept(f"no kept recording {which[:60]!r}; kept: {', '.join(e.id for e in entries[-5:])}",
                                 hint="`ctrlspeak retry --list` shows the kept recordings")

    @staticmethod
    def read(entry: EntryInfo) -> np.ndarray:
        raw = entry.audio_path.read_bytes()
        raw = raw[: len(raw) // 4 * 4]  # a crash may leave half a sample at the end
        return np.frombuffer(raw, dtype="<f4").astype(np.float32)

    def done(self, entry_id: str, keep_anyway: bool = False) -> None:
        """The transcript is in history: drop the entry, or keep it within the retention.

        ``keep_anyway`` keeps it even with no retention set (as the newest of at least one):
        the words could not be delivered or stored, and `ctrlspeak retry` is where they are."""
        audio, meta = self.dir / f"{entry_id}.f32", self.dir / f"{entry_id}.json"
        partial_audio, partial_meta = self.dir / f"{entry_id}.partial.f32", self.dir / f"{entry_id}.partial.json"
        keep = max(self.keep, 1) if keep_anyway else self.keep
        if keep > 0:
            kept = _private_dir(self.dir / "kept")
            for src, name in ((audio, f"{entry_id}.f32"), (partial_audio, f"{entry_id}.f32")):
                if src.exists():
                    os.replace(src, kept / name)
            for src in (meta, partial_meta):
                if src.exists():
                    os.replace(src, kept / f"{entry_id}.json")
            for old in self.kept()[: -keep]:
                _unlink(old.audio_path)
                _unlink(old.audio_path.with_suffix(".json"))
        for path in (audio, meta, partial_audio, partial_meta):
            _unlink(path)

    @staticmethod
    def _scan(directory: Path) -> list[EntryInfo]:
        if not directory.is_dir():
            return []
        found = []
        for audio in directory.glob("*.f32"):
            partial = audio.name.endswith(".partial.f32")
            entry_id = audio.name[: -len(".partial.f32")] if partial else audio.stem
            meta_path = audio.with_name(f"{entry_id}.partial.json" if partial else f"{entry_id}.json")
            try:
                meta = json.loads(meta_path.read_text())
            except (OSError, ValueError):
                meta = {"id": entry_id}  # the audio is what matters; metadata may be lost
            found.append(EntryInfo(entry_id, audio, meta, not partial))
        return found
