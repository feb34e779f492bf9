"""Live text: the open segment's words while the person speaks, before a pause ends it.

A segment is only transcribed once a pause ends it, so without this the live view waits for
the pause. With ``live = true`` the loop asks :class:`OpenSegment` after every block of audio
whether to send the worker more of the open segment; its text comes back as the tentative
tail of :class:`~ctrlspeak.daemon.live_text.LiveText`. How depends on the model:

- an offline model (Parakeet TDT, CTC, Canary) decodes the open segment's audio so far again;
- a cache-aware streaming model (Nemotron streaming, Parakeet Unified, tiny-en) gets only the
  audio it has not had (:class:`StreamFeed`), in its own chunk size, and the worker carries
  the encoder's caches from piece to piece (models/streaming.py), so a piece costs only its
  own audio however long the segment grows.

Either way the segment itself is then transcribed whole, as with live off.

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
from ctrlspeak.ipc import SAMPLE_RATE, StreamPiece, WorkerReady

if TYPE_CHECKING:
    from ctrlspeak.daemon.dictation import Session

log = logging.getLogger(__name__)

#: an open segment shorter than this holds a short word at most: not worth a decode
MIN_OPEN_S = 0.3
#: what ``stream_chunk_ms = 0`` picks: the smallest chunk at least this long, 160 ms for a
#: small model or a GPU, 560 ms for a big model on a CPU (a 0.6B int8 encoder spends 0.7 of a
#: 160 ms chunk computing on 2 cores, a quarter of a 560 ms one: scripts/bench_live.py --chunks
#: --big; 160 ms keeps up, but with no room for anything else)
AUTO_CHUNK_MS, AUTO_CHUNK_BIG_CPU_MS, BIG_PARAMS = 160, 560, 100_000_000
#: a streaming piece holds at most this much audio (or one chunk, if longer): when the worker
#: falls behind, a segment's final text waits behind one piece of this size at most
MAX_PIECE_S = 1.0


def pick_chunk_ms(setting: int, choices: tuple[int, ...], device: str, params: int) -> tuple[int, str | None]:
    """The chunk size to stream at, and a warning when ``setting`` is not one of ``choices``
    (the model's own sizes); 0 when the model does not stream."""
    if not choices:
        return 0, None
    if setting in choices:
        return setting, None
    want = AUTO_CHUNK_BIG_CPU_MS if device == "cpu" and params > BIG_PARAMS else AUTO_CHUNK_MS
    chunk = min((c for c in choices if c >= want), default=max(choices))
    if setting == 0:
        return chunk, None
    sizes = ", ".join(str(c) for c in choices)
    return chunk, f"stream_chunk_ms = {setting} is not a chunk size of this model ({sizes} ms); streaming in {chunk} ms"


class ChunkChoice:
    """``chunk_ms()`` for :class:`OpenSegment`: the loaded model's chunk from the config's
    setting (both read when asked: a model switch or a config reload changes it), saying once
    in the log when the setting is not one the model has."""

    def __init__(self, ready: Callable[[], WorkerReady | None], setting: Callable[[], int]) -> None:
        self._ready, self._setting = ready, setting
        self._warned: str | None = None

    def __call__(self) -> int:
        ready = self._ready()
        if ready is None:
            return 0
        chunk, warning = pick_chunk_ms(self._setting(), ready.stream_chunks_ms, ready.device, ready.params)
        if warning is not None and warning != self._warned:
            log.warning("%s", warning)
        self._warned = warning
        return chunk


class StreamFeed:
    """What of the open segment the worker's stream has not had yet."""

    def __init__(self) -> None:
        self._key: str | None = None
        self._sent = 0

    def next(self, key: str, pending: np.ndarray, chunk_ms: int) -> tuple[np.ndarray, StreamPiece] | None:
        """The next piece of stream ``key`` (one segment: its audio so far is ``pending``),
        or None until a whole chunk has come."""
        if key != self._key:  # a new segment: a new stream
            self._key, self._sent = key, 0
        chunk = chunk_ms * SAMPLE_RATE // 1000
        new = pending[self._sent:]
        if new.size < chunk:
            return None
        new = new[:max(chunk, int(MAX_PIECE_S * SAMPLE_RATE))]
        piece = StreamPiece(stream=key, start=self._sent, chunk_ms=chunk_ms)
        self._sent += new.size
        return new, piece

    def decode(self, key: str, pending: np.ndarray, chunk_ms: int) -> tuple[np.ndarray, StreamPiece | None] | None:
        """What goes to the worker for the open segment ``key`` now: all of it to decode again
        (``chunk_ms`` 0: the model does not stream), else its next piece (None: not yet)."""
        return (pending, None) if not chunk_ms else self.next(key, pending, chunk_ms)

    def lost(self) -> None:
        """A piece failed: the next starts the stream again from the segment's beginning."""
        self._key = None


class LivePacer:
    """One for the daemon's life, as the worker it paces is shared by every recording;
    ``interval_s`` is the config's, set again at each recording's start."""

    def __init__(self, interval_s: float, clock: Callable[[], float], budget: float = 0.5) -> None:
        self.interval_s, self._clock, self._budget = interval_s, clock, budget
        self._last = float("-inf")  # when the last decode was sent
        self._gap = 0.0  # what the budget asks between two sends, from the last one's cost
        self._sent_at: float | None = None  # a decode is in flight since then

    def due(self, worker_idle: bool, open_s: float, interval_s: float | None = None) -> bool:
        """``interval_s``: this decode's own pace instead of the config's (a stream's chunk)."""
        interval = self.interval_s if interval_s is None else interval_s
        return (self._sent_at is None and worker_idle and open_s >= MIN_OPEN_S
                and self._clock() >= self._last + max(interval, self._gap))

    def sent(self) -> None:
        self._sent_at = self._last = self._clock()

    def back(self, compute_s: float | None) -> None:
        """The decode in flight is back; ``compute_s``: what it cost the worker (None: failed)."""
        sent, self._sent_at = self._sent_at, None
        if sent is None:
            return
        cost = compute_s if compute_s is not None else self.interval_s
        self._gap = cost / self._budget


class OpenSegment:
    """Sends the live session's open segment for decoding, and takes the answers back."""

    def __init__(self, pacer: LivePacer, submit: Callable[[np.ndarray, StreamPiece | None], Future],
                 on_done: Callable[[str, int, Future], None], chunk_ms: Callable[[], int] = lambda: 0) -> None:
        """``on_done(session_id, index, future)`` runs on any thread and must post it to the
        loop, which then calls :meth:`done`. ``chunk_ms()``: the chunk the model streams at
        now, 0 when it does not stream (an offline model, or none loaded yet)."""
        self.pacer, self._submit, self._on_done, self._chunk_ms = pacer, submit, on_done, chunk_ms
        self._feed = StreamFeed()

    def tick(self, session: Session | None, worker_idle: bool) -> None:
        if session is None:
            return
        open_s, chunk_ms = session.segmenter.buffered_s, self._chunk_ms()
        if not self.pacer.due(worker_idle, open_s, interval_s=0.0 if chunk_ms else None):
            return
        index = session.count
        # a stream's chunk is the pace: a piece goes as soon as one has come
        piece = self._feed.decode(f"{session.id}.{index}", session.segmenter.pending(), chunk_ms)
        if piece is None:
            return
        self.pacer.sent()
        future = self._submit(*piece)
        future.add_done_callback(lambda f: self._on_done(session.id, index, f))

    def done(self, session: Session | None, index: int, future: Future) -> Partial | None:
        """A decode is back: the tentative tail of ``session`` (None: it ended meanwhile)."""
        try:
            transcript = future.result()
        except errors.CtrlspeakError as exc:  # a partial is a courtesy: the segment's own text follows
            log.debug("a live decode failed: %s", exc.message)
            self._feed.lost()
            self.pacer.back(None)
            return None
        self.pacer.back(transcript.timings.compute_s)
        if session is None:
            return None
        return session.live.tail(index, transcript.text)

