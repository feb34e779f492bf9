"""``ctrlspeak transcribe --stream FILE``: a file through the daemon's live path, its text
printed as it is recognised.

The file is read in the microphone's blocks and cut by the daemon's own live segmentation
rule; each segment goes to the worker as it is cut, and the open segment is decoded again
every ``live_interval_s``, or streamed chunk by chunk for a streaming model
(:mod:`ctrlspeak.daemon.live_decode`), so what is printed is what the live view shows while
a person speaks. ``--realtime`` feeds the blocks at the pace of the
audio; without it each block waits for the worker, as fast as the model allows, and the
interval is counted in audio seconds.
"""
from __future__ import annotations

import dataclasses
import json
import sys
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import numpy as np

from ctrlspeak import config, errors
from ctrlspeak.audio import files as audio
from ctrlspeak.audio.segment import keep_rest, live_rule
from ctrlspeak.daemon.live_decode import LivePacer, StreamFeed
from ctrlspeak.daemon.live_text import LiveText, Partial
from ctrlspeak.ipc import SAMPLE_RATE, StreamPiece
from ctrlspeak.text import pipeline
from ctrlspeak.text.context import Context

#: the microphone's block: how often the live path looks at new audio
BLOCK_S = 0.1


class Printer:
    """Partials as JSON lines, or the final text as it grows (plain).

    With ``ctx`` (the text pipeline's context), each piece of final text goes through the
    pipeline as it comes, after what was printed before it, as typing while speaking does
    (a spoken mark split across a pause stays words); the final result's ``text`` is what
    was printed and ``raw_text`` the model's own where they differ. Without it (``--raw``),
    the model's text as it is. Partials (JSON) are the live view's: the model's text."""

    def __init__(self, as_json: bool, out: Any = None, ctx: Context | None = None) -> None:
        self._json, self._out, self._ctx = as_json, out or sys.stdout, ctx
        self._seen = ""  # the model's final text taken so far
        self._shown = ""  # what it became

    def _take(self, final: str, ends: bool) -> str:
        new, self._seen = final[len(self._seen):], final
        if self._ctx is not None:
            ctx = dataclasses.replace(self._ctx, before=self._shown or None)
            if new.strip():
                new = pipeline.insert(new, ctx, ends=ends)
            elif ends:  # the last piece said nothing new: the text may still want its period
                new = pipeline.close(final, ctx)
        self._shown += new
        return new

    def partial(self, name: str, p: Partial | None) -> None:
        if p is None:
            return
        grown = self._take(p.final, ends=False)  # the final text only grows at its end
        if self._json:
            self._out.write(json.dumps({**p.to_json(), "file": name}) + "\n")
        else:
            self._out.write(grown)
        self._out.flush()

    def final(self, result: dict[str, Any]) -> None:
        rest = self._take(result["text"], ends=True)
        if self._shown != result["text"]:
            result["raw_text"], result["text"] = result["text"], self._shown
        if self._json:
            self._out.write(json.dumps({"event": "final", **result}) + "\n")
        else:
            self._out.write(rest + "\n")
        self._seen = self._shown = ""
        self._out.flush()


def stream_file(submit: Callable[[np.ndarray, StreamPiece | None], Future], wait: Callable[[Future], Any],
                name: str, stream: audio.FileStream, cfg: config.Config, printer: Printer, *, realtime: bool,
                decode_open: bool = True, chunk_ms: int = 0) -> dict[str, Any]:
    """One file through the live path; returns its result (text, audio_s, pieces, partials,
    streamed: the pieces that went to the model's stream). ``decode_open=False``: segments
    only, as the daemon with ``live = false``; ``chunk_ms``: the open segment streams in
    chunks of that size (0: it is decoded again)."""
    from ctrlspeak.audio.vad import make_vad

    shown = audio.display_path(name)
    segmenter = live_rule(cfg.min_silence_s, cfg.max_segment_s).segmenter(make_vad())
    session = uuid.uuid4().hex[:8]
    live = LiveText(session)
    position = [0.0]  # audio seconds fed so far
    t0 = time.monotonic()
    # as fast as the model allows, every block waits for the worker anyway: nothing is there for
    # the budget to protect, and without it what is decoded depends on the audio alone
    pacer = LivePacer(cfg.live_interval_s, (lambda: time.monotonic() - t0) if realtime else (lambda: position[0]),
                      budget=0.5 if realtime else float("inf"))
    segments: dict[int, Future] = {}
    decode: tuple[int, Future] | None = None
    feed = StreamFeed()
    count = partials = streamed = 0

    def show(p: Partial | None) -> None:
        nonlocal partials
        partials += p is not None
        printer.partial(shown, p)

    def collect(everything: bool) -> None:
        """Take back what the worker has done (``everything``: wait for all in flight)."""
        nonlocal decode
        if decode is not None and (everything or decode[1].done()):
            (index, future), decode = decode, None
            try:
                t = wait(future)
                pacer.back(t.timings.compute_s)
                show(live.tail(index, t.text))
            except errors.CtrlspeakError:
                feed.lost()
                pacer.back(None)  # a partial is a courtesy: the segment's own text follows
        for index in sorted(segments):
            if everything or segments[index].done():
                show(live.segment(index, wait(segments.pop(index)).text))

    for block in stream.blocks(BLOCK_S):
        position[0] += block.size / SAMPLE_RATE
        if realtime:
            time.sleep(max(0.0, t0 + position[0] - time.monotonic()))
        for piece in segmenter.feed(block):
            segments[count] = submit(piece)
            count += 1
        if decode_open and pacer.due(worker_idle=not segments and decode is None, open_s=segmenter.buffered_s,
                                     interval_s=0.0 if chunk_ms else None):
            piece = feed.decode(f"{session}.{count}", segmenter.pending(), chunk_ms)
            streamed += piece is not None and piece[1] is not None
            if piece is not None:
                pacer.sent()
                decode = (count, submit(*piece))
        collect(everything=not realtime)
    rest = segmenter.flush()
    if keep_rest(rest, count):
        segments[count] = submit(rest)
        count += 1
    collect(everything=True)
    return {"file": shown, "text": live.final, "audio_s": round(position[0], 3), "pieces": count,
            "partials": partials, "streamed": streamed, "roundtrip_s": round(time.monotonic() - t0, 4)}

