"""The transcription worker: a spawned process that holds torch, NeMo and the model.

Start-up order matters and is the reason this module imports nothing heavy at the top:

1. thread limits go into the environment (OMP/MKL read them when torch loads);
2. tqdm gets a threading lock (see :mod:`ctrlspeak.patches.tqdm_lock`) before NeMo
   can create a bar;
3. a watchdog thread waits on the parent's sentinel, so the worker never outlives the
   daemon;
4. the model is downloaded if it is not cached yet (before the slow NeMo import, so a
   download's progress or failure comes first);
5. torch and NeMo are imported, the model restored and warmed up, ``WorkerReady`` sent;
6. requests are served until ``Shutdown`` arrives or the parent dies.

The queues and messages are drawn in :mod:`ctrlspeak.ipc`.
"""
from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
import os
import sys
import threading
import time
import traceback
from typing import Any

from ctrlspeak import errors
from ctrlspeak.ipc import (
    BOOT_ID,
    Failure,
    LoadModel,
    ModelRef,
    Shutdown,
    Stage,
    TranscribeRequest,
    Transcript,
    Timings,
    WorkerReady,
    WorkerSettings,
)
from ctrlspeak.workers.channel import Channels

log = logging.getLogger(__name__)

#: exit statuses the supervisor can tell apart (as gunicorn's arbiter does)
EXIT_OK = 0
EXIT_BOOT_FAILED = 3
EXIT_PARENT_DIED = 4


def set_thread_limits(threads: int) -> None:
    """Must run before torch is imported: OpenMP and MKL read these once, at load."""
    os.environ["OMP_NUM_THREADS"] = str(threads)
    os.environ["MKL_NUM_THREADS"] = str(threads)
    # idle OpenMP threads sleep instead of spinning: live text sends a request every 0.1-0.3 s,
    # and spinning after each cost the worker as much CPU again as the requests themselves
    # (scripts/bench_live.py: live costs 0.194 -> 0.107 CPU s per s of speech, latency the same)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _apply_torch_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(threads)
    except RuntimeError:
        # only settable once per process, before any inter-op work; a reload keeps the first
        pass


def _watch_parent() -> None:
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def wait_for_death() -> None:
        multiprocessing.connection.wait([parent.sentinel])
        # the daemon is gone: nobody will read our results, so leave at once
        os._exit(EXIT_PARENT_DIED)

    threading.Thread(target=wait_for_death, name="parent-watchdog", daemon=True).start()


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.WARNING),
        format="%(asctime)s ctrlspeak-worker[%(process)d] %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # NeMo's telemetry shim warns on every import; it is not something a user can act on
    logging.getLogger("nv_one_logger").setLevel(logging.ERROR)


def _rss_bytes() -> int:
    import psutil

    return psutil.Process().memory_info().rss


def _param_count(model: Any) -> int:
    n = sum(p.numel() for p in model.parameters())
    # a dynamic int8 linear keeps its weight packed, outside parameters()
    for m in model.modules():
        if hasattr(m, "_packed_params") and callable(getattr(m, "weight", None)):
            n += m.weight().numel()
    return n


class Worker:
    def __init__(self, settings: WorkerSettings, channels: Channels) -> None:
        self.settings = settings
        self.channels = channels
        self.backend: Any = None
        self.model_name = ""
        self.import_s = 0.0

    def _stage(self, stage: Stage, fraction: float, message: str) -> None:
        self.channels.progress(stage, fraction, message)

    def import_runtime(self) -> None:
        t0 = time.perf_counter()
        self._stage("import", 0.0, "importing torch")
        _apply_torch_threads(self.settings.threads)
        self._stage("import", 0.25, "importing NeMo ASR")
        import nemo.collections.asr  # noqa: F401  (the slow part: ~8 s on 2 cores)
        from nemo.utils import logging as nemo_logging

        nemo_logging.set_verbosity(logging.ERROR)
        self._stage("import", 1.0, "imported NeMo")
        self.import_s = time.perf_counter() - t0

    def model_path(self, ref: ModelRef) -> str:
        from ctrlspeak.models import download

        s = self.settings
        path = download.download(ref, cache_dir=s.hf_cache_dir, offline=s.offline, on_progress=self.channels.emit,
                                 endpoint=s.hf_endpoint, weights_dir=s.weights_cache_dir, int8=s.quantize == "int8")
        return str(path)

    def load(self, ref: ModelRef, request_id: str = BOOT_ID) -> WorkerReady:
        from ctrlspeak.models import backends

        t0 = time.perf_counter()
        path = self.model_path(ref)
        backend = backends.load(path, self.settings.compute_device, self._stage,
                                cache_root=self.settings.weights_cache_dir, sdpa=self.settings.sdpa,
                                quantize=self.settings.quantize)
        if self.settings.warmup:
            backends.warm_up(backend, self._stage)
        # replace only once the new model works: a failed switch keeps the old one
        self.backend, self.model_name = backend, ref.name
        return WorkerReady(
            model=ref.name,
            family=backend.family,
            device=backend.device.type,
            dtype=backend.dtype_name,
            threads=self.settings.threads,
            import_s=self.import_s,
            load_s=time.perf_counter() - t0,
            rss_bytes=_rss_bytes(),
            pid=os.getpid(),
            id=request_id,
            stream_chunks_ms=backend.streams.chunks_ms if backend.streams is not None else (),
            params=_param_count(backend.model),
            engine=backend.engine,
        )

    def transcribe(self, request: TranscribeRequest, received: float) -> Transcript:
        t0 = time.perf_counter()
        self.channels.progress("transcribe", 0.0, f"transcribing {request.duration_s:.1f} s", done=0.0)
        try:
            text, enc_s, dec_s = self.backend.transcribe(request.audio, request.options)
        except errors.CtrlspeakError:
            raise
        except Exception as exc:
            raise errors.TranscribeError(f"{type(exc).__name__}: {exc}") from exc
        compute_s = time.perf_counter() - t0
        self.channels.progress("transcribe", 1.0, "transcribed")
        return Transcript(
            id=request.id,
            text=text,
            model=self.model_name,
            timings=Timings(
                audio_s=request.duration_s,
                queued_s=max(0.0, received - request.sent_at) if request.sent_at else 0.0,
                encoder_s=enc_s,
                decode_s=dec_s,
                compute_s=compute_s,
            ),
        )

    def serve(self, requests: Any) -> None:
        while True:
            message = requests.get()
            received = time.monotonic()
            if isinstance(message, Shutdown):
                log.debug("shutdown: %s", message.reason)
                return
            if isinstance(message, TranscribeRequest):
                try:
                    self.channels.send_result(self.transcribe(message, received))
                except Exception as exc:  # every failure goes back as a coded message
                    self.channels.send_result(Failure.from_exception(message.id, exc, traceback.format_exc()))
            elif isinstance(message, LoadModel):
                try:
                    self.channels.send_result(self.load(message.model, message.id))
                except Exception as exc:
                    self.channels.send_result(Failure.from_exception(message.id, exc, traceback.format_exc()))
            else:
                log.warning("ignoring unexpected message %r", type(message).__name__)


def run_worker(settings: WorkerSettings, requests: Any, results: Any, events: Any) -> None:
    """Process entry point (the target given to the spawn context)."""
    set_thread_limits(settings.threads)
    from ctrlspeak.patches.tqdm_lock import apply_tqdm_lock

    apply_tqdm_lock()
    _watch_parent()
    _setup_logging(settings.log_level)
    channels = Channels(results, events)
    worker = Worker(settings, channels)
    try:
        # the model first: a first run's download (or its failure: disk space, a 404) is not
        # kept waiting behind the NeMo import; load() then finds the file in the cache
        worker.model_path(settings.model)
        worker.import_runtime()
        channels.send_result(worker.load(settings.model))
    except Exception as exc:
        channels.send_result(Failure.from_exception(BOOT_ID, exc, traceback.format_exc()))
        _flush(results, events)
        sys.exit(EXIT_BOOT_FAILED)
    worker.serve(requests)
    _flush(results, events)
    sys.exit(EXIT_OK)


def _flush(results: Any, events: Any) -> None:
    # results must reach the pipe before we exit; leftover progress may be dropped
    events.cancel_join_thread()
    events.close()
    results.close()
    results.join_thread()
