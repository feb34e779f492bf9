"""Cache-aware streaming, live: audio in as it is spoken, text out chunk by chunk.

Worker-only (imports torch). For a model with a cache-aware streaming encoder (NVIDIA's
Nemotron streaming and Parakeet Unified models, tiny-en): each chunk of 80-1120 ms goes
through NeMo's ``conformer_stream_step`` once, with the encoder's caches carried from chunk to
chunk, so a chunk costs only its own audio, not all the audio so far.

NeMo's ``CacheAwareStreamingAudioBuffer`` computes the mel spectrogram of whatever audio it is
given, so pieces appended live come out with other frames at their edges than the whole
recording would (../shared/notes/nemo.md). :class:`LiveStream` keeps the mel exact instead:
a frame is taken once its whole STFT window has arrived, computed over a window of audio that
reaches three frames further back (so neither the window's zero padding nor the
pre-emphasis's first sample touches it), and the last frames at :meth:`LiveStream.finish`,
with the recording's real end. It then cuts chunks exactly as the buffer does, so the text
equals the buffer's on the whole recording (tests/integration/test_streaming.py).
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np

#: frames recomputed before the first new one: a centred STFT window reaches n_fft/2 = 1.6
#: hops back, and pre-emphasis one sample more
_MARGIN_FRAMES = 3


def _pick(value: Any, first: bool) -> int:
    """A streaming_cfg size: [first chunk, later chunks], or one for both."""
    if isinstance(value, (list, tuple)):
        return int(value[0] if first else value[1])
    return int(value)


def chunk_choices(model: Any) -> dict[int, int]:
    """The chunk sizes a model streams at: {chunk ms: right context}, empty for a model
    without a cache-aware (chunked, limited right context) encoder. A chunk holds the
    right context's frames and the current one, each ``subsampling_factor`` mel hops."""
    enc = getattr(model, "encoder", None)
    contexts = getattr(enc, "att_context_size_all", None)
    if enc is None or not contexts or getattr(enc, "att_context_style", "") != "chunked_limited":
        return {}
    hop_ms = float(model.cfg.preprocessor.get("window_stride", 0.01)) * 1000
    frame_ms = int(getattr(enc, "subsampling_factor", 8)) * hop_ms
    return {int(round((right + 1) * frame_ms)): int(right)
            for _left, right in contexts if right is not None and right >= 0}


class LiveStream:
    def __init__(self, model: Any, right_context: int) -> None:
        import torch

        self._torch, self._model = torch, model
        enc = model.encoder
        self._context = [enc.att_context_size[0], right_context]
        with self.context():
            self._cfg = enc.streaming_cfg
        feat = model.preprocessor.featurizer
        self._hop, self._half = int(feat.hop_length), int(feat.n_fft) // 2
        self._audio = np.zeros(0, np.float32)  # what the next frames need; earlier samples are dropped
        self._base = 0  # samples dropped before _audio (a whole number of hops)
        self._mel = torch.zeros((1, enc._feat_in, 0))
        self._idx = 0
        self._step = 0
        self._caches = enc.get_initial_cache_state(batch_size=1)
        self._hyps: Any = None
        self._pred: Any = None
        self.text = ""
        sampling = getattr(getattr(enc, "pre_encode", None), "get_sampling_frames", None)
        self._sampling = sampling() if sampling is not None else None

    @property
    def mel(self) -> Any:
        """The mel frames so far, [1, features, frames] (the offline ones, frame for frame)."""
        return self._mel

    @property
    def chunk_s(self) -> float:
        """The audio one chunk holds after the first (e.g. 0.16 s at right context 1)."""
        return _pick(self._cfg.shift_size, False) * self._hop / 16000

    def feed(self, samples: np.ndarray) -> str:
        """Audio as it comes (float32, 16 kHz); returns the text so far."""
        self._audio = np.concatenate([self._audio, samples.astype(np.float32, copy=False)])
        heard = self._base + self._audio.size
        stable = (heard - self._half) // self._hop + 1 if heard >= self._half else 0
        self._extend(stable, final=False)
        with self.context():
            self._run(final=False)
        return self.text

    def finish(self) -> str:
        """The recording ended: its last frames and chunks; returns the whole text."""
        self._extend((self._base + self._audio.size) // self._hop + 1, final=True)
        with self.context():
            self._run(final=True)
        return self.text

    @contextlib.contextmanager
    def context(self) -> Iterator[None]:
        """The encoder at this stream's right context, and back after: the same model
        transcribes whole segments in between, with its own context."""
        enc = self._model.encoder
        before = list(enc.att_context_size)
        enc.set_default_att_context_size(self._context)
        try:
            yield
        finally:
            enc.set_default_att_context_size(before)

    def _extend(self, frames: int, final: bool) -> None:
        torch = self._torch
        have = self._mel.size(-1)
        if frames <= have and not final:
            return
        first = max(0, have - _MARGIN_FRAMES)
        window = self._audio[first * self._hop - self._base:]
        if window.size == 0:
            return
        with torch.inference_mode():
            mel, _ = self._model.preprocessor(input_signal=torch.from_numpy(np.ascontiguousarray(window))[None],
                                              length=torch.tensor([window.size]))
        new = mel[:, :, have - first:frames - first] if not final else mel[:, :, have - first:]
        self._mel = torch.cat([self._mel, new], dim=-1)
        # the next window starts _MARGIN_FRAMES before the next new frame: nothing before it is needed
        drop = max(0, self._mel.size(-1) - _MARGIN_FRAMES) * self._hop - self._base
        if drop > 0:
            self._audio, self._base = self._audio[drop:], self._base + drop

    def _run(self, final: bool) -> None:
        torch, cfg, enc = self._torch, self._cfg, self._model.encoder
        total = self._mel.size(-1)
        while self._idx < total:
            first = self._idx == 0
            size, shift = _pick(cfg.chunk_size, first), _pick(cfg.shift_size, first)
            if not final and self._idx + size > total:
                return  # wait for the rest of this chunk
            chunk = self._mel[:, :, self._idx:self._idx + size]
            if self._sampling is not None and chunk.size(-1) < _pick(self._sampling, first):
                return
            cache_n = _pick(cfg.pre_encode_cache_size, first)
            if first:
                cache = torch.zeros((1, chunk.size(1), cache_n))
            else:
                cache = self._mel[:, :, max(0, self._idx - cache_n):self._idx]
                if cache.size(-1) < cache_n:
                    cache = torch.cat([torch.zeros((1, chunk.size(1), cache_n - cache.size(-1))), cache], dim=-1)
            signal = torch.cat([cache, chunk], dim=-1)
            length = torch.tensor([min(signal.size(-1), total - self._idx + cache.size(-1))])
            self._idx += shift
            ch, tm, ch_len = self._caches
            with torch.inference_mode():
                self._pred, texts, ch, tm, ch_len, self._hyps = self._model.conformer_stream_step(
                    processed_signal=signal, processed_signal_length=length, cache_last_channel=ch,
                    cache_last_time=tm, cache_last_channel_len=ch_len,
                    keep_all_outputs=final and self._idx >= total, previous_hypotheses=self._hyps,
                    previous_pred_out=self._pred,
                    drop_extra_pre_encoded=0 if self._step == 0 else cfg.drop_extra_pre_encoded,
                    return_transcription=True)
            self._caches = (ch, tm, ch_len)
            self._step += 1
            if texts:
                t = texts[0]
                self.text = (t.text if hasattr(t, "text") else str(t)).strip()


class StreamSlot:
    """The one stream a worker keeps (only a recording's open segment streams): a piece that
    starts at 0 opens a new stream in place of the last; any other must continue it exactly,
    so a piece lost on the way, or a worker restarted meanwhile, fails plainly instead of
    running the encoder's caches over a gap."""

    def __init__(self, model: Any) -> None:
        self._model = model
        self._choices = chunk_choices(model)
        self._id: str | None = None
        self._stream: LiveStream | None = None
        self._fed = 0

    @property
    def chunks_ms(self) -> tuple[int, ...]:
        return tuple(sorted(self._choices))

    def feed(self, audio: np.ndarray, stream: str, start: int, chunk_ms: int) -> str:
        """``audio``: the samples from ``start`` on of stream ``stream``; returns its text so far."""
        from ctrlspeak import errors

        if chunk_ms not in self._choices:
            offered = ", ".join(f"{c} ms" for c in self.chunks_ms) or "none: it is not a streaming model"
            raise errors.StreamError(f"this model does not stream in {chunk_ms} ms chunks (its sizes: {offered})")
        if start == 0:
            self._id, self._stream, self._fed = stream, LiveStream(self._model, self._choices[chunk_ms]), 0
        elif self._stream is None or stream != self._id or start != self._fed:
            raise errors.StreamError(f"stream {stream} piece at sample {start} does not follow what the worker "
                                     f"has ({self._fed} samples of {self._id})")
        text = self._stream.feed(audio)
        self._fed += audio.size
        return text
