"""NeMo ASR backends. Only the worker imports this module (it imports torch and NeMo).

Audio comes in as a float32 16 kHz mono numpy array and is fed to the model directly
(preprocessor -> encoder -> decoding), with no temporary files and no per-call
DataLoader. Canary (AED) goes through ``transcribe()`` with an in-memory array, since
its prompt handling lives there; ``transcribe()`` leaves modules in train mode, so
``model.eval()`` is called after every use of it.
"""
from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ctrlspeak import errors
from ctrlspeak.audio.segment import settle_edges
from ctrlspeak.ipc import SAMPLE_RATE, TranscribeOptions
from ctrlspeak.models import tdt_greedy
from ctrlspeak.models.int8 import quantize_encoder
from ctrlspeak.models.streaming import StreamSlot

log = logging.getLogger(__name__)

#: NeMo pads clips shorter than this itself; the direct path does the same
MIN_SAMPLES = SAMPLE_RATE


def pick_device(preference: str) -> torch.device:
    cuda = torch.cuda.is_available()
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if preference == "auto":
        return torch.device("cuda" if cuda else "mps" if mps else "cpu")
    if preference == "cuda" and not cuda:
        raise errors.DeviceUnavailable("--compute-device cuda was asked for, but torch sees no CUDA GPU")
    if preference == "mps" and not mps:
        raise errors.DeviceUnavailable("--compute-device mps was asked for, but Apple MPS is not available")
    return torch.device(preference)


def half_dtype(device: torch.device) -> torch.dtype | None:
    """Half precision where it helps: CUDA only. bf16 was measured slower on CPU."""
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


@contextlib.contextmanager
def _kept_cwd() -> Iterator[None]:
    # restore_from chdirs into its temp dir (process-wide); put the cwd back
    cwd = os.getcwd()
    try:
        yield
    finally:
        os.chdir(cwd)


def family_of(model: Any) -> str:
    from nemo.collections.asr.models import EncDecCTCModel, EncDecMultiTaskModel, EncDecRNNTModel

    if isinstance(model, EncDecMultiTaskModel):
        return "aed"
    if isinstance(model, EncDecRNNTModel):
        cfg = model.cfg
        durations = cfg.get("model_defaults", {}).get("tdt_durations") or cfg.get("decoding", {}).get("durations")
        loss_name = str(cfg.get("loss", {}).get("loss_name", ""))
        return "tdt" if durations or loss_name.startswith("tdt") else "rnnt"
    if isinstance(model, EncDecCTCModel):
        return "ctc"
    raise errors.ModelLoadError(f"unsupported model class {type(model).__name__}")


def restore(path: str, device: torch.device, cache_root: str | None = None,
            int8_encoder: bool = False) -> tuple[Any, bool]:
    """Return (model in eval mode, whether the weights cache served it); with ``int8_encoder``
    the encoder's linears are int8 (CPU only; models/int8.py)."""
    from nemo.collections.asr.models import ASRModel

    cached = False
    try:
        with _kept_cwd():
            if cache_root:
                from ctrlspeak.models import fastload

                model, cached = fastload.restore_cached(path, device, cache_root, int8_encoder)
            else:
                model = ASRModel.restore_from(restore_path=os.path.abspath(path), map_location=device)
                if int8_encoder:
                    quantize_encoder(model)
    except errors.CtrlspeakError:
        raise
    except Exception as exc:
        raise errors.ModelLoadError(f"cannot load {os.fsdecode(path)!r}: {type(exc).__name__}: {exc}") from exc
    model.eval()
    return model, cached


#: attention modules whose forward has a scaled_dot_product_attention branch (NeMo 3.0);
#: the Longformer variant raises on it, so it is left alone
_SDPA_ATTENTION = ("MultiHeadAttention", "RelPositionMultiHeadAttention")


def use_sdpa(model: Any, enabled: bool = True) -> int:
    """Switch the encoder's self-attention to ``torch.nn.functional.scaled_dot_product_attention``
    (NeMo's ``use_pytorch_sdpa``; models saved without it default to the manual matmul path).
    Same maths, fewer passes over the attention matrix. Returns how many modules changed."""
    encoder = getattr(model, "encoder", None)
    if encoder is None:
        return 0
    changed = 0
    for module in encoder.modules():
        if type(module).__name__ in _SDPA_ATTENTION and hasattr(module, "use_pytorch_sdpa"):
            if module.use_pytorch_sdpa != enabled:
                module.use_pytorch_sdpa = enabled
                changed += 1
    if hasattr(encoder, "use_pytorch_sdpa"):
        encoder.use_pytorch_sdpa = enabled
    return changed


def _texts(result: Any) -> list[str]:
    # NeMo 3.0 returns list[Hypothesis]; older releases returned (best, all) tuples
    if isinstance(result, tuple):
        result = result[0]
    out = []
    for item in result:
        out.append(item if isinstance(item, str) else getattr(item, "text", ""))
    return out


@dataclass
class Backend:
    model: Any
    family: str
    device: torch.device
    dtype: torch.dtype | None
    int8_encoder: bool = False
    #: the live stream of a cache-aware streaming model (models/streaming.py); None: it does not stream
    streams: Any = None
    #: decode TDT with models/tdt_greedy.py's loop (same ids as NeMo's greedy_batch, a fraction of
    #: its time at batch size 1); load() sets it for the TDT models on CPU that the loop supports
    tdt_loop: bool = False

    @property
    def engine(self) -> str:
        """What serves the model, as WorkerReady reports it: PyTorch through NeMo, with
        ctrlspeak's own TDT loop doing the decode where it does."""
        return "pytorch, nemo + own tdt decode" if self.tdt_loop else "pytorch, nemo"

    @property
    def dtype_name(self) -> str:
        """What the model computes in, as WorkerReady reports it: "float32", "bfloat16", or
        "int8+float32" (int8 encoder linears, the rest float32)."""
        name = "float32" if self.dtype is None else str(self.dtype).removeprefix("torch.")
        return f"int8+{name}" if self.int8_encoder else name

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def transcribe(self, audio: np.ndarray, options: TranscribeOptions) -> tuple[str, float | None, float | None]:
        """Return (text, encoder seconds, decode seconds)."""
        if audio.ndim != 1 or audio.dtype != np.float32:
            raise errors.AudioInvalid("audio must be 1-D float32 at 16 kHz")
        if audio.size == 0:
            raise errors.AudioInvalid("the audio is empty")
        if not np.isfinite(audio).all():
            raise errors.AudioInvalid("the audio holds NaN or infinite samples")
        if options.stream is not None:
            return self._stream(audio, options.stream)
        audio = settle_edges(audio)  # the same text for the same words, whenever the capture began
        if audio.size < MIN_SAMPLES:
            audio = np.pad(audio, (0, MIN_SAMPLES - audio.size))
        if self.family == "aed":
            return self._transcribe_aed(audio, options)
        return self._transcribe_direct(audio)

    def _stream(self, audio: np.ndarray, piece: Any) -> tuple[str, None, float]:
        if self.streams is None:
            raise errors.StreamError(f"a {self.family} model without a cache-aware encoder does not stream")
        t0 = time.perf_counter()
        with self._autocast():
            text = self.streams.feed(audio, piece.stream, piece.start, piece.chunk_ms)
        return text, None, time.perf_counter() - t0

    def _transcribe_direct(self, audio: np.ndarray) -> tuple[str, float, float]:
        model = self.model
        with torch.inference_mode(), self._autocast():
            t0 = time.perf_counter()
            signal = torch.from_numpy(audio).unsqueeze(0).to(self.device)
            length = torch.tensor([audio.shape[0]], device=self.device)
            processed, processed_len = model.preprocessor(input_signal=signal, length=length)
            encoded, encoded_len = model.encoder(audio_signal=processed, length=processed_len)
            t1 = time.perf_counter()
            # the LSTM prediction step is ~2x faster with mkldnn off (measured on CPU)
            with torch.backends.mkldnn.flags(enabled=False):
                if self.family == "ctc":
                    log_probs = model.decoder(encoder_output=encoded)
                    result = model.decoding.ctc_decoder_predictions_tensor(
                        log_probs, decoder_lengths=encoded_len, return_hypotheses=False
                    )
                elif self.tdt_loop and encoded.shape[0] == 1:
                    result = [tdt_greedy.greedy_tdt_text(model, encoded, int(encoded_len[0]))]
                else:
                    result = model.decoding.rnnt_decoder_predictions_tensor(
                        encoder_output=encoded, encoded_lengths=encoded_len, return_hypotheses=False
                    )
            t2 = time.perf_counter()
        texts = _texts(result)
        return (texts[0] if texts else "").strip(), t1 - t0, t2 - t1

    def _transcribe_aed(self, audio: np.ndarray, options: TranscribeOptions) -> tuple[str, None, float]:
        source = options.language or "en"
        target = options.target_language or source
        t0 = time.perf_counter()
        try:
            with self._autocast():
                result = self.model.transcribe(
                    [audio],
                    batch_size=1,
                    verbose=False,
                    num_workers=0,
                    source_lang=source,
                    target_lang=target,
                    task="asr" if source == target else "ast",
                    pnc="yes" if options.punctuation else "no",
                )
        finally:
            self.model.eval()  # transcribe() leaves encoder/decoder in train mode
        texts = _texts(result)
        return (texts[0] if texts else "").strip(), None, time.perf_counter() - t0


def load(
    path: str,
    device_preference: str,
    on_stage: Callable[[str, float, str], None],
    cache_root: str | None = None,
    sdpa: bool = True,
    quantize: str = "off",
    tdt_loop: bool = True,
) -> Backend:
    """With ``tdt_loop`` a TDT model on CPU is decoded by models/tdt_greedy.py where it supports
    the model; everything else (CTC, RNNT, AED, GPU, what it refuses) keeps NeMo's decoding."""
    device = pick_device(device_preference)
    int8_encoder = quantize == "int8" and device.type == "cpu"
    if quantize == "int8" and not int8_encoder:
        log.info("quantize = int8 applies on CPU only; the model runs unquantised on %s", device.type)
    on_stage("restore", 0.0, f"restoring {os.path.basename(os.fsdecode(path))} on {device.type}"
             + (" with an int8 encoder" if int8_encoder else ""))
    model, cached = restore(path, device, cache_root, int8_encoder)
    family = family_of(model)
    if sdpa:
        use_sdpa(model)
    on_stage("restore", 1.0, f"restored a {family} model" + (" from the weights cache" if cached else ""))
    loop = tdt_loop and family == "tdt" and device.type == "cpu"
    if loop and (why := tdt_greedy.supports(model)) is not None:
        log.info("TDT decoding stays NeMo's: %s", why)
        loop = False
    streams = StreamSlot(model)
    return Backend(model=model, family=family, device=device, dtype=half_dtype(device), int8_encoder=int8_encoder,
                   streams=streams if streams.chunks_ms else None, tdt_loop=loop)


def warm_up(backend: Backend, on_stage: Callable[[str, float, str], None]) -> None:
    on_stage("warmup", 0.0, "one second of quiet noise")
    rng = np.random.default_rng(0)
    backend.transcribe((rng.standard_normal(SAMPLE_RATE) * 1e-3).astype(np.float32), TranscribeOptions())
    on_stage("warmup", 1.0, "ready")
