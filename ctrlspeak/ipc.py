"""Messages between the daemon (main process) and the transcription worker.

Every message is a small frozen dataclass defined here, and nothing else crosses the
process boundary. Every request carries an id and gets exactly one reply carrying the
same id, matched in one table (``WorkerClient._pending``, like ``pending_work_items`` in
``concurrent/futures/process.py``). The boot needs no request: its reply carries
:data:`BOOT_ID`. The worker is started with an explicit ``spawn`` context::

    daemon (main process)                                      worker (spawned, torch + NeMo)
    ---------------------                                      ------------------------------
    Supervisor (one deadline thread: hang deadlines, restart backoff)
      | submit(id="r1.1") / switch(id="load-3")    ^ futures resolved by id
      v                                            |
    WorkerClient                                   |
      _pending: {id: Future}  (one table)          |
      submit()/load_model() --- requests -------------->  serve loop
                                TranscribeRequest(id) | LoadModel(id) | Shutdown
      dispatcher thread <------ results ----------------  Transcript(id) | WorkerReady(id) | Failure(id)
                                (never dropped: the worker blocks rather than lose one;
                                 the boot's reply has id BOOT_ID)
      dispatcher thread <------ events -----------------  Progress
                                (bounded; when full the oldest progress is dropped,
                                 so emitting never blocks the worker)
      dispatcher thread <------ process sentinel -------  readable when the worker dies
                                (every pending future fails with ERR_WORKER_CRASHED)
      worker watchdog   <------ parent sentinel --------  readable when the daemon dies

A request's audio is a whole segment, or, with ``TranscribeOptions.stream`` set, the next piece
of a live stream (:class:`StreamPiece`: a recording's open segment, for a cache-aware streaming
model): the worker keeps that one stream's encoder caches between pieces and answers with its
text so far; a piece that does not follow what it has fails with ERR_STREAM.

The Supervisor gives each attempt of a request its own id (``<request>.<attempt>``), so
a late reply from an attempt it gave up on never answers the retry.

Audio travels as float32 16 kHz mono numpy arrays in memory (pickled by the queue);
nothing is written to temporary WAV files. Resampling and downmixing happen on the
daemon side (:mod:`ctrlspeak.audio.files`), so the worker only ever sees 16 kHz mono.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from ctrlspeak import errors

SAMPLE_RATE = 16_000

#: the steps of long work, in the order the worker goes through them
Stage = Literal["download", "import", "restore", "warmup", "transcribe"]

#: the id of the boot's reply (the WorkerReady or Failure for the model in WorkerSettings)
BOOT_ID = "boot"


@dataclass(frozen=True)
class ModelRef:
    """A model name resolved on the daemon side (see :mod:`ctrlspeak.models.registry`).

    ``source`` is ``"file"`` (a local or bundled ``.nemo``) or ``"hf"`` (a Hugging Face repo
    whose ``filename`` is fetched into the local HF cache).
    """

    name: str
    source: str
    path: str | None = None
    hf_id: str | None = None
    filename: str | None = None
    family: str | None = None


@dataclass(frozen=True)
class WorkerSettings:
    """Everything the worker needs, passed explicitly at spawn (no global state)."""

    model: ModelRef
    compute_device: str = "auto"
    threads: int = 2
    offline: bool = False
    hf_cache_dir: str | None = None
    #: the hub the daemon probed (HF_ENDPOINT when it started), so the worker asks the same one
    hf_endpoint: str | None = None
    #: where restored models keep a fast-start copy (models/fastload.py); None = no cache
    weights_cache_dir: str | None = None
    #: switch the encoder's attention to torch's scaled_dot_product_attention
    sdpa: bool = True
    #: "int8" (dynamic int8 encoder linears, CPU only; other devices run unquantised) or "off"
    quantize: str = "int8"
    warmup: bool = True
    log_level: str = "WARNING"
    progress_queue_size: int = 64


@dataclass(frozen=True)
class StreamPiece:
    """Marks a request's audio as the next piece of a live stream (a recording's open
    segment) for a cache-aware streaming model: the worker feeds it to the stream ``stream``,
    whose samples from ``start`` on it holds, in ``chunk_ms`` chunks, and answers with the
    stream's text so far. ``start`` 0 opens the stream."""

    stream: str
    start: int
    chunk_ms: int


@dataclass(frozen=True)
class TranscribeOptions:
    language: str | None = None
    target_language: str | None = None
    punctuation: bool = True
    #: None: transcribe the audio whole
    stream: StreamPiece | None = None


@dataclass(frozen=True, eq=False)
class TranscribeRequest:
    id: str
    audio: np.ndarray
    options: TranscribeOptions = field(default_factory=TranscribeOptions)
    #: time.monotonic() when sent (the clock is system-wide on Linux and macOS)
    sent_at: float = 0.0

    def __post_init__(self) -> None:
        a = self.audio
        if not isinstance(a, np.ndarray) or a.dtype != np.float32 or a.ndim != 1:
            raise TypeError("TranscribeRequest.audio must be a 1-D float32 array at 16 kHz")

    @property
    def duration_s(self) -> float:
        return len(self.audio) / SAMPLE_RATE


@dataclass(frozen=True)
class LoadModel:
    """Switch the worker to another model; answered by WorkerReady or a Failure with ``id``."""

    id: str
    model: ModelRef


@dataclass(frozen=True)
class Shutdown:
    reason: str = ""


@dataclass(frozen=True)
class Timings:
    audio_s: float
    #: time between the request being sent and the worker picking it up
    queued_s: float
    #: preprocessor + encoder forward
    encoder_s: float
    #: decoding (greedy search / autoregressive decoder)
    decode_s: float
    #: the whole request inside the worker
    compute_s: float


@dataclass(frozen=True)
class Transcript:
    id: str
    text: str
    timings: Timings
    model: str


@dataclass(frozen=True)
class Progress:
    """A step of long work. ``fraction`` is None when the amount of work is unknown."""

    stage: Stage
    fraction: float | None
    message: str = ""
    done: float | None = None
    total: float | None = None
    unit: str = ""
    #: set when a download attempt failed and the next starts in this many seconds
    #: (``message`` says why); such a step is never rate-limited away
    retry_in_s: float | None = None


@dataclass(frozen=True)
class WorkerReady:
    model: str
    family: str
    device: str
    dtype: str
    threads: int
    import_s: float
    load_s: float
    rss_bytes: int
    pid: int
    #: the LoadModel this answers, or BOOT_ID for the model the worker was started with
    id: str = BOOT_ID
    #: the chunk sizes the model streams at (a cache-aware encoder); () when it does not stream
    stream_chunks_ms: tuple[int, ...] = ()
    #: the model's parameter count
    params: int = 0
    #: what serves the model (Backend.engine): "pytorch, nemo" or "pytorch, nemo + own tdt decode"
    engine: str = ""


@dataclass(frozen=True)
class Failure:
    """An error crossing the process boundary. ``id`` is the request it answers (BOOT_ID
    when the worker's first model cannot be loaded); None only for a message the worker
    could not tell apart."""

    id: str | None
    code: str
    message: str
    traceback: str = ""
    hint: str | None = None

    @classmethod
    def from_exception(cls, request_id: str | None, exc: BaseException, tb: str) -> Failure:
        if isinstance(exc, errors.CtrlspeakError):
            return cls(request_id, exc.code, exc.message, tb, exc.hint)
        return cls(request_id, "ERR_INTERNAL", f"{type(exc).__name__}: {exc}", tb)

    def to_error(self) -> errors.CtrlspeakError:
        return errors.from_code(self.code, self.message, detail=self.traceback, hint=self.hint)


WorkerInbound = TranscribeRequest | LoadModel | Shutdown
WorkerOutbound = WorkerReady | Transcript | Failure | Progress
