"""The recording being made: its session from the start tap to the stop, with its audio on disk.

The loop owns one :class:`LiveRecording`, and it owns the live :class:`Session`: the
microphone's audio goes into the session's journal entry (so a crash loses nothing) and its
segmenter, whose finished segments go to :class:`~ctrlspeak.daemon.dictation.Dictations` at
once, while the person is still speaking. At the stop the rest is flushed and the session is
handed to the dictations to finish; what the person is told stays with the daemon.
"""
from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import numpy as np

from ctrlspeak import config as config_mod
from ctrlspeak.audio.segment import live_rule
from ctrlspeak.daemon.dictation import Dictations, Session
from ctrlspeak.daemon.microphone import Microphone
from ctrlspeak.ipc import SAMPLE_RATE

#: a final segment quieter than this (about -50 dBFS) holds no speech: don't transcribe it
SILENT_PEAK = 0.003


class LiveRecording:
    def __init__(self, mic: Microphone, dictations: Dictations, *, sound: Callable[[str], None]) -> None:
        self._mic = mic
        self._dictations = dictations
        self._sound = sound
        #: the recording being made; None between recordings
        self.session: Session | None = None

    def start(self, cfg: config_mod.Config, vad: Any, model_name: str) -> np.ndarray:
        """Open the microphone and a journal entry; returns the pre-roll audio. Raises the
        microphone's error (nothing is started then)."""
        pre = self._mic.begin()
        session = Session(id=uuid.uuid4().hex[:8], started=time.monotonic(),
                          segmenter=live_rule(cfg.min_silence_s, cfg.max_segment_s).segmenter(vad))
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
        return session.audio_s

    def stop(self, reason: str, at: float | None) -> Session | None:
        """End the recording: the journal entry is committed, the rest goes to the worker, and
        the session is the dictations' to finish (call their ``maybe_finish`` once it is told)."""
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
        if rest is not None and (session.count == 0 or float(np.abs(rest).max()) > SILENT_PEAK):
            self._dictations.add_segment(session, rest)
        self._dictations.finishing[session.id] = session
        return session

    def cancel(self) -> bool:
        """Drop the recording, its journal entry too; False when none was being made."""
        session = self.session
        if session is None:
            return False
        self._mic.end()
        self.session = None
        if session.recording is not None:
            session.recording.discard()
        return True
