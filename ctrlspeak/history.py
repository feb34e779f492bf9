"""A private SQLite history of transcripts.

The database lives in the user's data directory (``platformdirs.user_data_dir("ctrlspeak")``:
``~/.local/share/ctrlspeak`` on Linux, ``~/Library/Application Support/ctrlspeak`` on macOS) as
``history.sqlite3``. Transcripts are private: the directory is 0700 and the file 0600, created
that way before SQLite opens it (SQLite gives its -wal and -shm files the same mode).

The schema version sits in ``PRAGMA user_version``; :data:`_MIGRATIONS` lists the steps from
each version to the next, run in one transaction when an older file is opened. A file from a
newer ctrlspeak is refused rather than guessed at.

One :class:`History` may be shared between threads (the daemon's delivery thread writes, the
control socket reads); a lock lets one of them use the connection at a time.

Exactly once: a dictation's audio journal entry is removed only after its row is committed,
and every commit is durable before :meth:`History.add` returns (WAL with ``synchronous=FULL``:
the WAL is fsynced at each commit, so a power cut right after cannot take the row back). The
row carries the journal entry's id (``journal_id``, unique), so a replay after a crash between
the commit and the entry's removal finds the row instead of writing a second one.

A write that fails (disk full, locked, read-only) raises :class:`~ctrlspeak.errors.HistoryError`.
"""
from __future__ import annotations

import logging
import os
import sqlite3
import stat
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from ctrlspeak import errors

log = logging.getLogger(__name__)

FILENAME = "history.sqlite3"
SCHEMA_VERSION = 3

# _MIGRATIONS[n] holds the statements that take a database from user_version n to n + 1.
# (Statements one by one: executescript() would COMMIT the migration's transaction first.)
_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE transcripts (
            id          INTEGER PRIMARY KEY AUTOINCREMENT,
            created_at  REAL NOT NULL,          -- Unix time, seconds
            text        TEXT NOT NULL,
            model       TEXT NOT NULL,
            duration_s  REAL NOT NULL,          -- length of the audio
            latency_s   REAL,                   -- end of speech to text ready, NULL if unknown
            source      TEXT NOT NULL DEFAULT 'dictation'
        )""",
        "CREATE INDEX transcripts_created_at ON transcripts (created_at)",
    ),
    (
        # the audio journal entry a transcript came from: replay recognises what is stored already
        "ALTER TABLE transcripts ADD COLUMN journal_id TEXT",
        "CREATE UNIQUE INDEX transcripts_journal_id ON transcripts (journal_id) WHERE journal_id IS NOT NULL",
    ),
    (
        # the model's own text when the text pipeline (ctrlspeak/text/) changed it; NULL: the same
        # (and every row from before the pipeline existed)
        "ALTER TABLE transcripts ADD COLUMN raw_text TEXT",
    ),
)
assert len(_MIGRATIONS) == SCHEMA_VERSION


@dataclass(frozen=True)
class Entry:
    """One transcript. ``created_at`` is Unix time; ``latency_s`` is None when not measured."""

    id: int
    created_at: float
    text: str
    model: str
    duration_s: float
    latency_s: float | None
    source: str
    #: the model's own text where the text pipeline changed it, else None (``text`` is both)
    raw_text: str | None = None

    @property
    def raw(self) -> str:
        """What the model wrote (for `retry`-like uses and `history --raw`)."""
        return self.text if self.raw_text is None else self.raw_text


def default_path() -> Path:
    return Path(platformdirs.user_data_dir("ctrlspeak", appauthor=False)) / FILENAME


class History:
    def __init__(self, path: Path | None = None, *, timeout: float = 5.0) -> None:
        self.path = Path(path) if path is not None else default_path()
        # Only the default directory is surely ours to chmod; a path given by hand may sit in
        # a shared directory (/tmp, ~/notes) that we create if missing but never change.
        _private_dir(self.path.parent, tighten=path is None)
        _private_file(self.path)
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        try:
            # isolation_level=None: autocommit, with explicit transactions where they matter.
            self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=timeout, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            # FULL, not NORMAL: a commit is on disk when add() returns, before the journal entry goes
            self._db.execute("PRAGMA synchronous=FULL")
            self._migrate()
        except BaseException as exc:
            if self._db is not None:
                self._db.close()
                self._db = None
            if not isinstance(exc, sqlite3.DatabaseError):
                raise
            raise errors.CtrlspeakError(
                f"cannot open the history database {self.path}: {exc}",
                hint="move the file aside; ctrlspeak starts a new history",
            ) from exc

    def _migrate(self) -> None:
        db = self._db
        assert db is not None
        version = self._version(db)
        if version == SCHEMA_VERSION:
            return
        db.execute("BEGIN IMMEDIATE")
        try:
            version = self._version(db)  # again, under the write lock: another process may have migrated
            for step in range(version, SCHEMA_VERSION):
                for statement in _MIGRATIONS[step]:
                    db.execute(statement)
                log.info("history schema migrated to version %d", step + 1)
            # PRAGMA takes no parameters; SCHEMA_VERSION is our own int.
            db.execute(f"PRAGMA user_version = {int(SCHEMA_VERSION)}")
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    def _version(self, db: sqlite3.Connection) -> int:
        version = int(db.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise errors.CtrlspeakError(
                f"the history database {self.path} has schema version {version}, newer than this "
                f"ctrlspeak understands ({SCHEMA_VERSION})",
                hint="upgrade ctrlspeak, or move the file aside to start a new history",
            )
        return version

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise errors.CtrlspeakError("the history database is closed")
        return self._db

    def add(self, text: str, *, model: str, duration_s: float, latency_s: float | None,
            source: str = "dictation", created_at: float | None = None, journal_id: str | None = None,
            raw_text: str | None = None) -> int:
        """Store one transcript durably; returns its id. With a ``journal_id`` already stored,
        nothing is added and that row's id is returned (a replay of a stored recording).
        ``text`` is what was delivered; ``raw_text`` the model's own text, stored only where it
        differs."""
        when = time.time() if created_at is None else created_at
        raw = None if raw_text is None or raw_text == text else raw_text
        try:
            with self._lock:
                db = self._conn()
                cur = db.execute(
                    "INSERT OR IGNORE INTO transcripts (created_at, text, model, duration_s, latency_s, source, "
                    "journal_id, raw_text) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (when, text, model, float(duration_s), None if latency_s is None else float(latency_s), source,
                     journal_id, raw),
                )
                if cur.rowcount == 1:
                    entry_id = int(cur.lastrowid)
                else:
                    entry_id = int(db.execute("SELECT id FROM transcripts WHERE journal_id = ?",
                                              (journal_id,)).fetchone()[0])
                    log.info("history: journal entry %s is stored already (entry %d)", journal_id, entry_id)
                    return entry_id
        except sqlite3.Error as exc:
            raise errors.HistoryError(f"cannot write to the history database {self.path}: {exc}") from exc
        log.debug("history: stored entry %d (%d characters)", entry_id, len(text))
        return entry_id

    def has_journal_id(self, journal_id: str) -> bool:
        """Whether the transcript of that journal entry is stored already."""
        try:
            with self._lock:
                row = self._conn().execute("SELECT 1 FROM transcripts WHERE journal_id = ?", (journal_id,)).fetchone()
        except sqlite3.Error as exc:
            raise errors.HistoryError(f"cannot read the history database {self.path}: {exc}") from exc
        return row is not None

    def recent(self, limit: int = 20) -> list[Entry]:
        """The newest ``limit`` entries, newest first."""
        with self._lock:
            rows = self._conn().execute(
                f"SELECT {_COLUMNS} FROM transcripts ORDER BY created_at DESC, id DESC LIMIT ?",
                (max(0, int(limit)),),
            ).fetchall()
        return [Entry(*row) for row in rows]

    def get(self, entry_id: int) -> Entry | None:
        with self._lock:
            row = self._conn().execute(f"SELECT {_COLUMNS} FROM transcripts WHERE id = ?", (int(entry_id),)).fetchone()
        return Entry(*row) if row else None

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def __enter__(self) -> History:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_COLUMNS = "id, created_at, text, model, duration_s, latency_s, source, raw_text"


def _private_dir(directory: Path, *, tighten: bool) -> None:
    """Create ``directory`` 0700; with ``tighten``, also chmod an existing one we own to 0700."""
    if not directory.exists():
        directory.mkdir(parents=True, mode=0o700)
        os.chmod(directory, 0o700)  # mkdir's mode is filtered by the umask; be exact
        return
    if not tighten:
        return
    st = directory.stat()
    if st.st_uid != os.geteuid():
        log.warning("history directory %s belongs to another user; leaving its mode", directory)
        return
    if stat.S_IMODE(st.st_mode) & 0o077:
        log.info("tightening %s to mode 0700", directory)
        os.chmod(directory, 0o700)


def _private_file(path: Path) -> None:
    """Create ``path`` 0600 before SQLite does (it would use 0644), or tighten it."""
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags, 0o600)
    try:
        st = os.fstat(fd)
        if st.st_uid == os.geteuid() and stat.S_IMODE(st.st_mode) != 0o600:
            os.fchmod(fd, 0o600)
    finally:
        os.close(fd)
