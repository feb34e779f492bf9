"""``ctrlspeak transcribe FILE...``: the same spawned worker the daemon uses."""
from __future__ import annotations

import argparse
import functools
import json
import logging
import queue
import sys
import time
from dataclasses import replace
from concurrent.futures import Future
from typing import Any

from ctrlspeak import config, errors
from ctrlspeak.audio import files as audio
from ctrlspeak.audio import segment
from ctrlspeak.ipc import Progress, TranscribeOptions, Transcript, WorkerReady
from ctrlspeak.models import registry
from ctrlspeak.models.download import is_offline
from ctrlspeak.patches.tqdm_lock import apply_tqdm_lock
from ctrlspeak.progress_view import ProgressView
from ctrlspeak.supervision.client import WorkerClient, settings_from_config

log = logging.getLogger(__name__)

#: pieces in flight at once: enough to keep the worker busy, few enough to bound memory
IN_FLIGHT = 4


def check_available(cfg: config.Config, ref: Any) -> None:
    """Fail before spawning anything when the model cannot possibly load."""
    if ref.source == "hf" and is_offline(cfg.offline) and registry.cached_path(ref, cfg.hf_cache_dir) is None:
        raise registry.not_cached_error(ref)


def _wait(future: Future[Any], events: queue.Queue[Progress], view: ProgressView) -> Any:
    """Block on ``future`` while drawing progress on this (the main) thread."""
    while True:
        try:
            view.handle(events.get(timeout=0.05))
            continue
        except queue.Empty:
            pass
        if future.done():
            while not events.empty():
                view.handle(events.get_nowait())
            return future.result()


def check_file(name: str) -> Any:
    """Open, validate and close ``name`` (a fraction of a second, no worker): a callable that
    opens it again when its turn comes, or the CtrlspeakError that says why it cannot be read.
    Only one input file is open at a time, so any number of them works under a low ulimit."""
    try:
        audio.FileStream(name).close()
    except errors.CtrlspeakError as exc:
        return exc
    return functools.partial(audio.FileStream, name)


def run(args: argparse.Namespace) -> int:
    from ctrlspeak.commands.flags import config_flags

    cfg = config.load(config_flags(args))
    ref = registry.resolve(cfg.model)
    check_available(cfg, ref)
    # every input checked before the worker starts: a bad file fails at once, not after the
    # model's load (and a worker told to stop while it still imports NeMo)
    inputs = [(name, check_file(name)) for name in args.files]
    if args.realtime and not args.stream:
        raise errors.UsageError("--realtime paces --stream: add --stream")
    one = None
    if args.stream:
        from ctrlspeak.commands.stream import Printer
        from ctrlspeak.text import context

        printer = Printer(args.json, ctx=None if getattr(args, "raw", False) else context.from_config(cfg))
        one = functools.partial(_stream_one, cfg=cfg, printer=printer, realtime=args.realtime)
    batch = run_batch(cfg, ref, inputs, args.progress, one=one)
    if batch is None:
        return 0
    results, ready, client, t_start = batch
    if not args.stream and not getattr(args, "raw", False):
        through_pipeline(cfg, results)
    if args.stream:
        _print_errors(results)  # the text is printed already, as it came
    else:
        _print(args, results, ready, client, t_start)
    failures = [r["error"] for r in results if "error" in r]
    return failures[0].exit_status if failures else 0


def through_pipeline(cfg: config.Config, results: list[dict[str, Any]]) -> None:
    """Each result's text through the text pipeline (ctrlspeak/text/), as the daemon delivers
    it; ``raw_text`` keeps the model's own where that changed it (``--raw`` prints that)."""
    from ctrlspeak.text import context, pipeline

    ctx = context.from_config(cfg)  # no focused app: stdout is the target
    for r in results:
        if "text" in r:
            text = pipeline.apply(r["text"], ctx)
            if text != r["text"]:
                r["raw_text"] = r["text"]
                r["text"] = text


def run_batch(cfg: config.Config, ref: Any, inputs: list[tuple[str, Any]], progress: str = "auto", one: Any = None):
    """Start a worker and transcribe the inputs in order.

    ``inputs`` is [(name, an array, a callable that opens a FileStream, or the
    CtrlspeakError that says why the input is unusable)]. Returns (results, ready, client,
    start time). When no input is usable, their errors are printed and the first is raised
    before any worker is started. ``one`` transcribes an input (default: :func:`_transcribe_one`).
    """
    options = TranscribeOptions(cfg.language, cfg.target_language, cfg.punctuation)
    # our own bars may be drawn from this process too; give tqdm a thread lock first
    apply_tqdm_lock()
    view = ProgressView(bars=None if progress == "auto" else progress == "bar", quiet=progress == "none")
    events: queue.Queue[Progress] = queue.Queue()
    if all(isinstance(data, errors.CtrlspeakError) for _, data in inputs):
        _print_errors([{"file": audio.display_path(n), "error": e} for n, e in inputs[1:]])
        raise inputs[0][1]
    client = WorkerClient(settings_from_config(cfg, ref), on_progress=events.put)
    t_start = time.monotonic()
    client.start()
    try:
        ready: WorkerReady = _wait(client.ready, events, view)
        results = [(one or _transcribe_one)(client, name, data, options, events, view) for name, data in inputs]
    finally:
        view.close()
        client.close()
    return results, ready, client, t_start


def _transcribe_one(client: WorkerClient, name: str, data: Any, options: TranscribeOptions,
                    events: queue.Queue[Progress], view: ProgressView) -> dict[str, Any]:
    """Transcribe one input (an array, or a FileStream read block by block).

    The input is cut at pauses by the same VAD segmenter the daemon uses, and at most
    IN_FLIGHT pieces are queued at a time, so memory stays bounded for any length.
    """
    from collections import deque

    from ctrlspeak.audio.vad import make_vad

    shown = audio.display_path(name)
    if isinstance(data, errors.CtrlspeakError):
        return {"file": shown, "error": data}
    warning = None
    if callable(data):
        try:
            data = data()  # the file is opened only now, and closed when it is read
        except errors.CtrlspeakError as exc:
            return {"file": shown, "error": exc}
        warning = data.truncated
        if warning:
            print(f"ctrlspeak: {shown}: warning: {warning}", file=sys.stderr)
    t0 = time.monotonic()
    blocks = data.blocks() if isinstance(data, audio.FileStream) else [data]
    segmenter = segment.FILE_RULE.segmenter(make_vad())  # the rule journal recovery cuts by too
    in_flight: deque[Any] = deque()
    transcripts: list[Transcript] = []
    samples = 0

    def submit(piece: Any) -> None:
        while len(in_flight) >= IN_FLIGHT:
            transcripts.append(_wait(in_flight.popleft(), events, view))
        in_flight.append(client.submit(piece, options))

    try:
        for block in blocks:
            samples += block.size
            for piece in segmenter.feed(block):
                submit(piece)
        rest = segmenter.flush()
        if rest is not None:
            submit(rest)
        while in_flight:
            transcripts.append(_wait(in_flight.popleft(), events, view))
    except errors.CtrlspeakError as exc:
        return {"file": shown, "error": exc}
    return {
        "file": shown,
        **({"warning": warning} if warning else {}),
        "text": segment.join_texts([t.text for t in transcripts]),
        "audio_s": round(samples / 16000, 3),
        "pieces": len(transcripts),
        "timings": {
            "roundtrip_s": round(time.monotonic() - t0, 4),
            "queued_s": round(sum(t.timings.queued_s for t in transcripts), 4),
            "encoder_s": _sum_or_none([t.timings.encoder_s for t in transcripts]),
            "decode_s": _sum_or_none([t.timings.decode_s for t in transcripts]),
            "compute_s": round(sum(t.timings.compute_s for t in transcripts), 4),
        },
    }


def _stream_one(client: WorkerClient, name: str, data: Any, options: TranscribeOptions,
                events: queue.Queue[Progress], view: ProgressView, *, cfg: config.Config, printer: Any,
                realtime: bool) -> dict[str, Any]:
    """``--stream``: one input through the live path (:mod:`ctrlspeak.commands.stream`)."""
    from ctrlspeak.commands.stream import stream_file
    from ctrlspeak.daemon.live_decode import pick_chunk_ms

    shown = audio.display_path(name)
    try:
        stream = data() if callable(data) else data
        if isinstance(stream, errors.CtrlspeakError):
            raise stream
        ready = client.ready.result()  # resolved before the first input
        chunk_ms, warning = pick_chunk_ms(cfg.stream_chunk_ms, ready.stream_chunks_ms, ready.device, ready.params)
        if warning:
            print(f"ctrlspeak: warning: {warning}", file=sys.stderr)
        try:
            result = stream_file(lambda piece, piece_of=None: client.submit(piece, replace(options, stream=piece_of)),
                                 lambda f: _wait(f, events, view), name, stream, cfg, printer, realtime=realtime,
                                 chunk_ms=chunk_ms)
        finally:
            stream.close()
    except errors.CtrlspeakError as exc:
        return {"file": shown, "error": exc}
    printer.final(result)
    return result


def _print_errors(results: list[dict[str, Any]]) -> None:
    for r in results:
        if "error" in r:
            print(f"ctrlspeak: {r['file']}: {r['error'].one_line()}", file=sys.stderr)


def _sum_or_none(values: list[float | None]) -> float | None:
    return None if any(v is None for v in values) else round(sum(values), 4)  # type: ignore[arg-type]


def _print(args: argparse.Namespace, results: list[dict[str, Any]], ready: WorkerReady,
           client: WorkerClient, t_start: float) -> None:
    _print_errors(results)
    if args.json:
        doc = {
            "model": ready.model,
            "family": ready.family,
            "device": ready.device,
            "dtype": ready.dtype,
            "engine": ready.engine,
            "threads": ready.threads,
            "worker": {
                "pid": ready.pid,
                "start_s": round(client.ready_at - client.started_at, 4),
                "import_s": round(ready.import_s, 4),
                "model_load_s": round(ready.load_s, 4),
                "rss_mb": round(ready.rss_bytes / 2**20, 1),
            },
            "total_s": round(time.monotonic() - t_start, 4),
            "results": [
                {**r, "error": {"code": r["error"].code, "message": r["error"].message, "hint": r["error"].hint}}
                if "error" in r else r
                for r in results
            ],
        }
        print(json.dumps(doc, indent=2))
        return
    ok = [r for r in results if "error" not in r]
    for r in ok:
        print(r["text"] if len(results) == 1 else f"{r['file']}: {r['text']}")
    sys.stdout.flush()
    log.info("worker ready in %.2f s (%s on %s)", client.ready_at - client.started_at, ready.model, ready.device)
