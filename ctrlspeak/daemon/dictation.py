"""A dictation's path from segments to delivery: transcribe, join, insert at the cursor, keep.

The daemon loop owns one :class:`Dictations` and is the only caller, so nothing here is
locked. It owns the recordings between their stop and their delivery (``finishing``), the
transcripts history refused (``unsaved``), and what was last inserted where (so the next
dictation into the same window follows it with a space). The loop's live recording is its
own; it is handed in where a segment of it completes.

Nothing the person said is lost on the way: a failed segment keeps the journal entry, a
failed paste leaves the text in history (or the recording in the journal), and a refused
history write keeps the transcript in memory and its journal entry on disk until it can.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ctrlspeak import errors
from ctrlspeak.ipc import SAMPLE_RATE
from ctrlspeak.audio.segment import FILE_RULE, Segmenter, cut, join_texts
from ctrlspeak.daemon.live_text import LiveText, Partial
from ctrlspeak.daemon.status import StatusEvent

log = logging.getLogger(__name__)


@dataclass
class Session:
    """One recording, from its first audio to its delivered text."""

    id: str
    started: float
    segmenter: Segmenter
    audio_s: float = 0.0
    segments: dict[int, np.ndarray] = field(default_factory=dict)  # kept until transcribed
    texts: dict[int, str] = field(default_factory=dict)
    failures: dict[int, errors.CtrlspeakError] = field(default_factory=dict)
    #: the worker's compute after the stop: what stop-to-text waited for besides the daemon itself
    compute_after_stop_s: float = 0.0
    count: int = 0
    stopped_at: float | None = None
    reason: str = ""
    #: "dictation", or "recovered" for a journal entry left by a crash
    kind: str = "dictation"
    recording: Any = None  # the journal's Recording while it is being made
    #: the journal entry's id; also stored with the transcript in history, so a replay of an
    #: entry that reached history (a crash just after the commit, a failed removal) adds nothing
    journal_id: str | None = None
    #: the audio is complete in the journal (committed at the stop, or found there at start)
    in_journal: bool = False
    #: its text so far, for the live view
    live: LiveText = field(init=False, repr=False)
    #: live_typing: its final text goes to the cursor while it is recorded; ``typed`` is how
    #: much of it is there (a prefix of the final text: only final text is typed)
    type_as_final: bool = False
    typed: str = ""
    #: what typing while speaking put at the cursor (``typed`` after the text pipeline, spaced)
    inserted: str = ""

    def __post_init__(self) -> None:
        self.live = LiveText(self.id)

    @property
    def complete(self) -> bool:
        return self.stopped_at is not None and len(self.texts) + len(self.failures) == self.count


@dataclass(frozen=True)
class Unsaved:
    """A transcript on its way to history; kept in memory while history cannot be written."""

    text: str
    model: str
    duration_s: float
    latency_s: float | None
    source: str
    journal_id: str | None
    created_at: float = field(default_factory=time.time)
    #: the model's own text, where the text pipeline changed it (``text`` is what was delivered)
    raw_text: str | None = None


@dataclass
class Parts:
    """The daemon's edges this path writes to; the daemon's wiring sets them (``output`` again
    on a config reload) and this path reads them at use, so it never holds a stale one."""

    output: Any = None
    history: Any = None
    journal: Any = None
    #: the text pipeline's ctrlspeak.text.context.Context for the config (set again on a reload)
    text: Any = None


class Dictations:
    """Segments in, text out: every recording from its first segment to history."""

    def __init__(self, parts: Parts, *, submit: Callable[[np.ndarray], Future],
                 on_done: Callable[[str, int, Future], None], publish: Callable[[StatusEvent], None],
                 publish_error: Callable[[errors.CtrlspeakError], None], settle: Callable[[], None],
                 model_name: Callable[[], str], on_partial: Callable[[Partial | None], None] = lambda p: None) -> None:
        """``submit(audio)`` sends a segment to the worker; ``on_done(session_id, index, future)``
        is called (on any thread) when it completes and must post it back to the loop, which then
        calls :meth:`segment_done`. ``settle()`` puts the status back to ready when all is over;
        ``on_partial`` gets a dictation's live text as its segments come back."""
        self.parts = parts
        self._submit = submit
        self._on_done = on_done
        self._publish = publish
        self._publish_error = publish_error
        self._settle = settle
        self._model_name = model_name
        self._on_partial = on_partial
        #: stopped recordings whose text is not delivered yet, by session id
        self.finishing: dict[str, Session] = {}
        #: transcripts that history refused (full, locked, read-only): written before the next one
        self.unsaved: list[Unsaved] = []
        #: (window, text) of the last dictation inserted: the next one into that window follows it
        self._last_insert: tuple[str | None, str] | None = None

    # -- segments -------------------------------------------------------------------------
    def add_segment(self, session: Session, audio: np.ndarray) -> None:
        index = session.count
        session.count += 1
        session.segments[index] = audio
        # the supervisor holds it until a worker is ready, and resends it if the worker dies
        future = self._submit(audio)
        future.add_done_callback(lambda f: self._on_done(session.id, index, f))

    def find(self, live: Session | None, session_id: str) -> Session | None:
        """The live session or a finishing one with that id (None: it is over)."""
        return live if live is not None and live.id == session_id else self.finishing.get(session_id)

    def at_worker(self, live: Session | None) -> int:
        """Segments sent to the worker and not back yet, the live session's included."""
        sessions = [*self.finishing.values(), *([live] if live is not None else [])]
        return sum(s.count - len(s.texts) - len(s.failures) for s in sessions)

    def segment_done(self, live: Session | None, session_id: str, index: int, future: Future) -> None:
        session = self.find(live, session_id)
        if session is None:
            return
        try:
            transcript = future.result()
            session.texts[index] = transcript.text
            if session.stopped_at is not None:  # only the part the person waited for counts
                waited = time.monotonic() - session.stopped_at
                session.compute_after_stop_s += min(transcript.timings.compute_s, waited)
            session.segments.pop(index, None)
        except errors.CtrlspeakError as exc:
            session.failures[index] = exc
        if session.kind == "dictation":  # a recovered recording's text is not being watched
            self._on_partial(session.live.segment(index, session.texts.get(index)))
            if session.type_as_final and session.stopped_at is None and not session.failures:
                self._type_final(session)
        self.maybe_finish(session)

    def _type_final(self, session: Session) -> None:
        """Typing while speaking: what became final since the last time goes to the cursor now.
        A paste that fails ends it for this recording: the rest, that part included, goes at
        the stop, the normal way (and history holds the whole text either way)."""
        new = session.live.final[len(session.typed):].strip()
        if not new:
            return
        target, insert = self._fit(new, ends=False)
        if not insert:  # the pipeline took it all ("um"): nothing to type, and it is dealt with
            session.typed = session.live.final
            return
        try:
            delivery = self.parts.output.deliver(insert)
        except errors.CtrlspeakError as exc:
            log.warning("typing while speaking stopped for this recording: %s", exc.message)
            session.type_as_final = False
            return
        if not delivery.pasted:
            session.type_as_final = False
            return
        self._last_insert = (target, insert)
        session.typed = session.live.final
        session.inserted += insert

    def maybe_finish(self, session: Session) -> None:
        if not session.complete:
            return
        self.finishing.pop(session.id, None)
        text = join_texts([session.texts.get(i, "") for i in range(session.count)])
        if session.failures:
            first = next(iter(session.failures.values()))
            kept = " (the recording is kept: `ctrlspeak retry last`)" if session.in_journal else ""
            self._publish_error(type(first)(first.message + kept, hint=first.hint))
            self._settle()
            return  # keep the journal entry: the words are not lost
        if session.kind == "recovered":
            self._finish_recovered(session, text)
            return
        if not text:
            self.forget_journal(session.journal_id)
            self._publish(StatusEvent("idle", "nothing was heard"))
            self._settle()
            return
        self._deliver(text, session)

    # -- the journal and history --------------------------------------------------------
    def open_journal(self, keep_recordings: bool, vad: Any, recover: bool = True) -> bool:
        """Open the audio journal and (at start) transcribe what a crash left in it."""
        from ctrlspeak.audio.journal import Journal

        try:
            journal = Journal(keep=keep_recordings)
            leftovers = journal.leftovers() if recover else []
        except OSError as exc:
            self.journal_failed(exc)
            return False
        self.parts.journal = journal
        for entry in leftovers:
            self._recover(entry, vad)
        return True

    def journal_failed(self, exc: OSError, session: Session | None = None) -> None:
        """A journal write failed: this recording goes on in memory; the next one tries again."""
        if session is not None and session.recording is not None:
            session.recording.abandon()
            session.recording = None
        self._publish_error(errors.JournalError(
            f"the audio journal is unavailable ({exc.strerror or exc}); this recording is kept in memory only"))

    def _recover(self, entry: Any, vad: Any) -> None:
        """Transcribe a recording a crash left behind; it goes to history, not the cursor."""
        if self.in_history(entry.id):
            # committed, then the daemon died (or a full disk kept it) before the entry was removed
            log.info("journal entry %s is in history already; removing it", entry.id)
            self.forget_journal(entry.id)
            return
        audio = self.parts.journal.read(entry)
        if audio.size == 0:
            self.parts.journal.done(entry.id)
            return
        session = Session(id=entry.id, started=time.monotonic(), segmenter=FILE_RULE.segmenter(vad),
                          kind="recovered", journal_id=entry.id, in_journal=True, audio_s=audio.size / SAMPLE_RATE,
                          stopped_at=time.monotonic())
        self.finishing[session.id] = session
        log.info("recovering recording %s (%.1f s) left by a crash", entry.id, session.audio_s)
        for piece in cut(audio, vad, FILE_RULE):  # a whole file at hand, as `transcribe` cuts one
            self.add_segment(session, piece)

    def forget_journal(self, journal_id: str | None, keep: bool = False) -> None:
        journal = self.parts.journal
        if journal is not None and journal_id:
            try:
                journal.done(journal_id, keep_anyway=keep)
            except OSError as exc:
                log.warning("could not remove journal entry %s: %s", journal_id, exc)

    def in_history(self, journal_id: str) -> bool:
        if self.parts.history is None:
            return False
        try:
            return self.parts.history.has_journal_id(journal_id)
        except errors.CtrlspeakError as exc:
            log.warning("%s", exc.one_line())
            return False  # recovered then; history's unique journal_id still refuses a second row

    def _store(self, item: Unsaved) -> bool:
        """Write ``item`` (after any earlier transcript history refused) to history durably,
        then drop its journal entry. False when history refused it: the error is published,
        the entry stays in the journal, and the transcript waits in memory for the next try."""
        if self.parts.history is None:
            return False
        self.unsaved.append(item)
        return self.flush_unsaved()

    def flush_unsaved(self) -> bool:
        while self.unsaved and self.parts.history is not None:
            first = self.unsaved[0]
            try:
                self.parts.history.add(first.text, model=first.model, duration_s=first.duration_s,
                                       latency_s=first.latency_s, source=first.source, created_at=first.created_at,
                                       journal_id=first.journal_id, raw_text=first.raw_text)
            except errors.CtrlspeakError as exc:
                waiting = len(self.unsaved)
                self._publish_error(type(exc)(exc.message + (f" ({waiting} transcripts wait for it)" if waiting > 1
                                                             else ""), hint=exc.hint))
                return False
            self.unsaved.pop(0)
            self.forget_journal(first.journal_id)  # only now: the transcript is committed
        return True

    def _finish_recovered(self, session: Session, text: str) -> None:
        if not text:
            self.forget_journal(session.journal_id)
            return
        from ctrlspeak.text import pipeline

        delivered = pipeline.apply(text, self.parts.text)  # not delivered, but history keeps both
        item = Unsaved(delivered, self._model_name(), session.audio_s, None, "recovered", session.journal_id,
                       raw_text=text)
        if self.parts.history is None:
            self.forget_journal(session.journal_id, keep=True)  # no history: `ctrlspeak retry` has it
            where = "history is off: `ctrlspeak retry --list` has it"
        elif self._store(item):
            where = "see `ctrlspeak history`"
        else:
            return  # the error is out; the entry stays in the journal
        words = len(text.split())
        self._publish(StatusEvent("notice", f"recovered a {session.audio_s:.0f} s recording that had not reached "
                                            f"history ({words} words): {where}", words=words))

    # -- delivery -----------------------------------------------------------------------
    def _deliver(self, text: str, session: Session) -> None:
        log.debug("transcript: %s", text)
        output = self.parts.output
        delivered_note = ""
        inserted_at: float | None = None
        failed: errors.CtrlspeakError | None = None
        rest = text[len(session.typed):].strip()  # typed while speaking already: the rest
        # typed while speaking: the rest, or only what closes it (a period)
        target, insert = self._fit(rest) if rest else self._fit("", raw=text) if session.inserted else (None, "")
        raw = text
        text = (session.inserted + insert).strip(" ")  # what reached the cursor, in pieces or at once
        try:
            delivery = output.deliver(insert) if insert else None
            inserted_at = delivery.inserted_at if delivery is not None else None
            if delivery is not None and delivery.pasted:
                self._last_insert = (target, insert)
            if delivery is not None and not delivery.pasted and delivery.method != "stdout":
                self._publish(StatusEvent("error", delivery.detail, code="ERR_PASTE_FAILED",
                                          hint=errors.info_for("ERR_PASTE_FAILED").hint))
                delivered_note = "on the clipboard"
        except errors.CtrlspeakError as exc:
            failed = exc
        # what the person waited for: the stop to the paste keystroke, not the clipboard's restore after it
        latency = (inserted_at if inserted_at is not None else time.monotonic()) - (session.stopped_at or 0.0)
        stored = self._store(Unsaved(text, self._model_name(), session.audio_s, latency, "dictation",
                                     session.journal_id, raw_text=raw))
        if self.parts.history is None:
            # nowhere else to keep the words when even the clipboard failed: keep the recording
            self.forget_journal(session.journal_id, keep=failed is not None)
        if failed is not None:
            # The words never go into a message: messages reach the log, journald, systemd's
            # STATUS=, notifications and `status --follow`. Say where they are instead.
            if stored:
                where = "the text is in `ctrlspeak history`"
            elif self.parts.history is not None:
                where = "the recording is kept in the journal and goes to history once it can"
            elif session.in_journal:
                where = "history is off: the recording is kept for `ctrlspeak retry last`"
            else:
                where = "history and the journal are off, so the text could not be kept"
            self._publish(StatusEvent("error", f"{failed.message}; {where}", code=failed.code, hint=failed.hint))
            delivered_note = "kept in history" if stored else "not delivered"
        words = len(text.split())
        self._publish(StatusEvent("done", delivered_note, latency_s=latency, words=words, model=self._model_name(),
                                  compute_s=session.compute_after_stop_s))
        self._settle()

    def _fit(self, text: str, *, ends: bool = True, raw: str = "") -> tuple[str | None, str]:
        """The window with the focus, and ``text`` as it must be inserted there: through the text
        pipeline (ctrlspeak/text/: the focused app's profile), then after the last dictation
        into the same window, a space (and a capital after a sentence end). An unknown window
        (Wayland) counts as the same one; another known window is a fresh start. ``ends``:
        whether the dictation ends with ``text`` (typing while speaking: not yet); an empty
        ``text`` asks only for what closes the dictation whose model text was ``raw``."""
        import dataclasses

        from ctrlspeak.text import pipeline
        from ctrlspeak.text.context import Context

        output = self.parts.output
        target = output.target()
        before = None
        if self._last_insert is not None and output.mode != "stdout":  # stdout: a line each
            last_target, last_text = self._last_insert
            if target is None or last_target is None or target == last_target:
                before = last_text
        ctx = self.parts.text if self.parts.text is not None else Context()
        app_names = getattr(output, "app_names", None)
        if app_names is not None and _needs_app(ctx):
            ctx = dataclasses.replace(ctx, app=app_names(), before=before)
        else:
            ctx = dataclasses.replace(ctx, before=before)
        return target, pipeline.insert(text, ctx, ends=ends) if text else pipeline.close(raw, ctx)


def _needs_app(ctx: Any) -> bool:
    """Whether the focused app can change the text: a profile, or a setting a terminal turns off
    (asking costs a focus query before each paste)."""
    return bool(ctx.profiles) or ctx.settings.auto_capitalize != "off" or ctx.settings.trailing_period != "off"
