"""Live text for offline models: the open segment decoded again while the person speaks.

A segment is only transcribed once a pause ends it, so without this the live view waits for
the pause. With ``live = true`` the loop asks :class:`OpenSegment` after every block of audio
whether to send the open segment's audio so far to the worker; its text comes back as the
tentative tail of :class:`~ctrlspeak.daemon.live_text.LiveText`.

The pace (:class:`LivePacer`, pure, with an injected clock) keeps it from costing the final
text: a decode is sent only while the worker has no segment to do and none of these in
flight, at most every ``interval_s``, and less often when one takes more than ``budget`` of
the time between them (a slow machine skips partials rather than falling behind). A final
segment can wait behind at most the one decode in flight. The decodes change nothing the
segments send, so the final text is the same with live on or off.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING

import numpy as np

from ctrlspeak import errors
from ctrlspeak.daemon.live_text import Partial

if TYPE_CHECKING:
    from ctrlspeak.daemon.dictation import Session

log = logging.getLogger(__name__)

#: an open segment shorter than this holds a short word at most: not worth a decode
MIN_OPEN_S = 0.3


class LivePacer:
    """One for the daemon's life, as the worker it paces is shared by every recording;
    ``interval_s`` is the config's, set again at each recording's start."""

    def __init__(self, interval_s: float, clock: Callable[[], float], budget: float = 0.5) -> None:
        self.interval_s, self._clock, self._budget = interval_s, clock, budget
        self._next = 0.0
        self._sent_at: float | None = None  # a decode is in flight since then

    def due(self, worker_idle: bool, open_s: float) -> bool:
        return (self._sent_at is None and worker_idle and open_s >= MIN_OPEN_S
                and self._clock() >= self._next)

    def sent(self) -> None:
        self._sent_at = self._clock()

    def back(self, compute_s: float | None) -> None:
        """The decode in flight is back; ``compute_s``: what it cost the worker (None: failed)."""
        sent, self._sent_at = self._sent_at, None
        if sent is None:
            return
        cost = compute_s if compute_s is not None else self.interval_s
        self._next = sent + max(self.interval_s, cost / self._budget)


class OpenSegment:
    """Sends the live session's open segment for decoding, and takes the answers back."""

    def __init__(self, pacer: LivePacer, submit: Callable[[np.ndarray], Future],
                 on_done: Callable[[str, int, Future], None]) -> None:
        """``on_done(session_id, index, future)`` runs on any thread and must post it to the
        loop, which then calls :meth:`done`."""
        self.pacer, self._submit, self._on_done = pacer, submit, on_done

    def tick(self, session: Session | None, worker_idle: bool) -> None:
        if session is None:
            return
        open_s = session.segmenter.buffered_s
        if not self.pacer.due(worker_idle, open_s):
            return
        index, audio = session.count, session.segmenter.pending()
        self.pacer.sent()
        future = self._submit(audio)
        future.add_done_callback(lambda f: self._on_done(session.id, index, f))

    def done(self, session: Session | None, index: int, future: Future) -> Partial | None:
        """A decode is back: the tentative tail of ``session`` (None: it ended meanwhile)."""
        try:
            transcript = future.result()
        except errors.CtrlspeakError as exc:  # a partial is a courtesy: the segment's own text follows
            log.debug("a live decode failed: %s", exc.message)
            self.pacer.back(None)
            return None
        self.pacer.back(transcript.timings.compute_s)
        if session is None:
            return None
        return session.live.tail(index, transcript.text)

