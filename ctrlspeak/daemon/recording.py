"""The recording being made: its session from the start tap to the stop, with its audio on disk.

The loop owns one :class:`LiveRecording`, and it owns the live :class:`Session`: the
microphone's audio goes into the session's journal entry (so a crash loses nothing) and its
segmenter, whose finished segments go to :class:`~ctrlspeak.daemon.dictation.Dictations` at
once, while the person is still speaking. At the stop the rest is flushed and the session is
handed to the dictations to finish. What the person is told about a start, a stop or a cancel
is said here too, through the loop's :class:`~ctrlspeak.daemon.publisher.Publisher`. With
``live = true`` the open segment is decoded again as it grows
(:mod:`~ctrlspeak.daemon.live_decode`), for live text before a pause ends it.
"""
from __future__ import annotations

import logging
import time
import uuid
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

import numpy as np

from ctrlspeak import config as config_mod
from ctrlspeak import errors
from ctrlspeak.audio.segment import keep_rest, live_rule
from ctrlspeak.daemon.dictation import Dictations, Session
from ctrlspeak.daemon.live_decode import OpenSegment
from ctrlspeak.daemon.microphone import Microphone
from ctrlspeak.daemon.publisher import Publisher
from ctrlspeak.daemon.status import StatusEvent
from ctrlspeak.ipc import SAMPLE_RATE

if TYPE_CHECKING:
    from ctrlspeak.daemon.worker_link import WorkerLink

log = logging.getLogger(__name__)

class LiveRecording:
    def __init__(self, mic: Microphone, dictations: Dictations, link: WorkerLink, pub: Publisher,
                 open_segment: OpenSegment) -> None:
        self._mic = mic
        self._dictations = dictations
        self._link, self._pub = link, pub
        self._open_segment = open_segment  # its decodes: live text before a pause ends a segment
        self._sounds = False  # the config's, as of this recording's start: its stop blip matches
        self._live = False  # the same: live = true decodes the open segment
        #: the recording being made; None between recordings
        self.session: Session | None = None

    def start(self, cfg: config_mod.Config, vad: Any, source: str) -> np.ndarray:
        """Start a recording and say so; returns the pre-roll audio. Raises the microphone's
        error, published already (nothing is started then)."""
        try:
            pre = self._open(cfg, vad, self._link.model_name)
        except errors.CtrlspeakError as exc:
            self._pub.error(exc)
            raise
        log.info("recording started (%s)", source)
        waiting = self._link.before_recording()
        listening = f"listening; {waiting}: the text comes once it is ready" if waiting else "listening"
        self._pub.publish(StatusEvent("recording", listening, model=self._link.model_name))
        if self._link.reload():  # after the recording started: its segments wait for the worker
            log.info("reloading %s", self._link.model_name)
        return pre

    def stop(self, reason: str, at: float | None) -> None:
        """End the recording, say what happens to it, and let the dictations finish it."""
        session = self._end(reason, at)
        if session is None:
            return
        log.info("recording stopped after %.1f s in %d segment(s)", session.audio_s, session.count)
        waiting, model = self._link.waiting_for(), self._link.model_name
        what = reason or f"{session.audio_s:.1f} s of audio"
        self._pub.publish(StatusEvent("transcribing", f"{what}; kept, waiting: {waiting}" if waiting else what,
                                      model=model))
        if waiting and self._link.downloading():
            kept = f"your {session.audio_s:.0f} s recording is kept and is transcribed as soon as the model is ready"
            self._pub.publish(StatusEvent("notice", f"{kept}: {waiting}", model=model))
        self._dictations.maybe_finish(session)

    def cancel(self) -> None:
        """Drop the recording, its journal entry too (nothing happens when none is being made)."""
        if self._discard():
            log.info("recording cancelled")
            self._pub.publish(StatusEvent("idle", "cancelled"))
            self._pub.settle()

    def _open(self, cfg: config_mod.Config, vad: Any, model_name: str) -> np.ndarray:
        """Open the microphone and a journal entry; returns the pre-roll audio."""
        pre = self._mic.begin()
        self._sounds, self._live = cfg.sounds, cfg.live
        self._open_segment.pacer.interval_s = cfg.live_interval_s
        session = Session(id=uuid.uuid4().hex[:8], started=time.monotonic(),
                          segmenter=live_rule(cfg.min_silence_s, cfg.max_segment_s).segmenter(vad),
                          type_as_final=cfg.live_typing and cfg.output != "stdout")
        dictations = self._dictations
        if dictations.parts.journal is None and cfg.journal:
            dictations.open_journal(cfg.keep_recordings, vad, recover=False)  # it failed before: try again
        if dictations.parts.journal is not None:
            try:
                session.recording = dictations.parts.journal.start(model=model_name)
                session.journal_id = session.recording.id
            except OSError as exc:
                dictations.journal_failed(exc)
        self.session = session
        self._sound("start")
        return pre

    def _sound(self, which: str) -> None:
        if self._sounds:
            from ctrlspeak.audio.sounds import play

            play(which)

    def feed(self, audio: np.ndarray) -> float | None:
        """Audio from the microphone; returns the recording's length so far (None: none is made)."""
        session = self.session
        if session is None:
            return None
        session.audio_s += audio.size / SAMPLE_RATE
        if session.recording is not None:
            try:
                session.recording.append(audio)
            except OSError as exc:  # a full disk must not cost the recording
                self._dictations.journal_failed(exc, session)
        for segment in session.segmenter.feed(audio):
            self._dictations.add_segment(session, segment)
        if self._live:
            idle = self._link.state.ready is not None and not self._dictations.at_worker(session)
            self._open_segment.tick(session, idle)
        return session.audio_s

    def decode_done(self, session_id: str, index: int, future: Future) -> None:
        """A decode of a recording's open segment is back: its live text, to the text sinks."""
        session = self._dictations.find(self.session, session_id)
        self._pub.partial(self._open_segment.done(session, index, future))

    def _end(self, reason: str, at: float | None) -> Session | None:
        """The journal entry is committed, the rest goes to the worker, and the session is the
        dictations' to finish (their ``maybe_finish``, once the person is told)."""
        session = self.session
        if session is None:
            return None
        self._mic.end()
        self.session = None
        session.stopped_at = time.monotonic() if at is None else at
        session.reason = reason
        self._sound("stop")
        if session.recording is not None:
            try:
                session.recording.commit(stopped_at=time.time(), audio_s=session.audio_s)
                session.in_journal = True
                session.recording = None
            except OSError as exc:
                self._dictations.journal_failed(exc, session)
        rest = session.segmenter.flush()
        if keep_rest(rest, session.count):
            self._dictations.add_segment(session, rest)
        self._dictations.finishing[session.id] = session
        return session

    def _discard(self) -> bool:
        session = self.session
        if session is None:
            return False
        self._mic.end()
        self.session = None
        if session.recording is not None:
            session.recording.discard()
        return True
