"""Audio on the daemon side: read files and bring any input to float32 16 kHz mono.

The worker only ever receives 16 kHz mono float32 arrays, so every resampling and
downmixing decision is made here, once.
"""
from __future__ import annotations

import logging
import os
import re
import stat
from pathlib import Path

import numpy as np

from ctrlspeak import errors
from ctrlspeak.ipc import SAMPLE_RATE

log = logging.getLogger(__name__)

#: sample rates a speech file may plausibly have; outside, the header is corrupt (a "1 Hz" WAV of
#: 16 KB read as 2.2 hours of audio after resampling)
MIN_RATE, MAX_RATE = 8_000, 384_000


def to_mono_16k(samples: np.ndarray, rate: int) -> np.ndarray:
    """Downmix (frames, channels) or (frames,) audio to mono and resample to 16 kHz."""
    data = np.asarray(samples)
    if data.dtype.kind in "iu":
        # integer PCM: scale to [-1, 1) by the type's full range
        info = np.iinfo(data.dtype)
        data = (data.astype(np.float32) - (info.max + info.min + 1) / 2) / ((info.max - info.min + 1) / 2)
    data = data.astype(np.float32, copy=False)
    if data.ndim == 2:
        data = data.mean(axis=1, dtype=np.float32)
    elif data.ndim != 1:
        raise errors.AudioInvalid(f"audio must be (frames,) or (frames, channels), not shape {data.shape}")
    if rate <= 0:
        raise errors.AudioInvalid(f"invalid sample rate {rate}")
    if rate != SAMPLE_RATE and data.size:
        import soxr

        data = soxr.resample(data, rate, SAMPLE_RATE, quality="HQ").astype(np.float32, copy=False)
    return np.ascontiguousarray(data)


def sanitize(audio: np.ndarray, name: str = "audio") -> np.ndarray:
    """Reject audio that holds nothing usable; repair isolated bad samples."""
    if audio.size == 0:
        raise errors.AudioInvalid(f"{name} is empty (0 samples)")
    bad = ~np.isfinite(audio)
    if bad.any():
        if bad.mean() > 0.5:
            raise errors.AudioInvalid(f"{name}: {bad.mean():.0%} of the samples are NaN or infinite")
        log.warning("%s: %d NaN/infinite samples replaced by silence", name, int(bad.sum()))
        audio = np.where(bad, np.float32(0.0), audio)
    peak = float(np.abs(audio).max())
    if peak > 1.0:
        # float files may exceed full scale; clip rather than wrap
        audio = np.clip(audio, -1.0, 1.0)
    return audio.astype(np.float32, copy=False)


def display_path(path: str | os.PathLike[str]) -> str:
    """A printable form of a path that may hold undecodable bytes."""
    return os.fsencode(path).decode("utf-8", "replace")


def load_file(path: str | os.PathLike[str]) -> np.ndarray:
    """Read a whole WAV/FLAC/OGG (anything libsndfile reads) as float32 16 kHz mono."""
    blocks = list(FileStream(path).blocks())
    return np.concatenate(blocks) if blocks else np.zeros(0, np.float32)


class FileStream:
    """A long file read block by block, so memory stays bounded (a 60-minute recording
    at 44.1 kHz stereo would be 1.3 GB as float32 if read at once).

    Opening validates the file (errors come early, before any model work): one file
    descriptor from here until :meth:`blocks` ends or :meth:`close`. :meth:`blocks` yields
    float32 16 kHz mono blocks. ``truncated`` says why the file holds less than its header
    promises (it is read as far as it goes), or is None.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        import soundfile as sf

        self.shown = display_path(path)
        try:
            self._fh = open(Path(path), "rb")  # noqa: SIM115 - closed in close()
        except FileNotFoundError:
            raise errors.AudioFileError(f"no such file: {self.shown}") from None
        except IsADirectoryError:
            raise errors.AudioFileError(f"{self.shown} is a directory, not an audio file") from None
        except PermissionError:
            raise errors.AudioFileError(f"permission denied reading {self.shown}") from None
        except OSError as exc:  # EMFILE, EIO, ENAMETOOLONG...
            raise errors.AudioFileError(f"cannot open {self.shown}: {exc.strerror or exc}") from None
        try:
            self._sf = sf.SoundFile(self._fh)
        except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
            empty = _is_empty_file(self._fh)
            self._fh.close()
            if empty:
                raise errors.AudioInvalid(f"{self.shown} is empty (0 bytes)") from None
            # libsndfile's own words, without soundfile's "Error opening <_io.BufferedReader ...>"
            why = str(getattr(exc, "error_string", "") or exc).strip().rstrip(".")
            raise errors.AudioFileError(f"cannot decode {self.shown}: {why[:1].lower() + why[1:]}") from None
        self.rate = self._sf.samplerate
        self.frames = self._sf.frames
        if not MIN_RATE <= self.rate <= MAX_RATE:
            self.close()
            raise errors.AudioFileError(
                f"{self.shown}: its header says {self.rate} Hz, which no speech recording has "
                f"({MIN_RATE // 1000} to {MAX_RATE // 1000} kHz): the file is corrupt")
        if self.frames == 0:
            self.close()
            raise errors.AudioInvalid(f"{self.shown} is empty (0 samples)")
        self.truncated = _truncation(self._sf.extra_info)

    @property
    def duration_s(self) -> float:
        return self.frames / self.rate

    def blocks(self, block_s: float = 10.0):
        import soxr

        resampler = soxr.ResampleStream(self.rate, SAMPLE_RATE, 1, dtype="float32") if self.rate != SAMPLE_RATE else None
        bad = total = 0
        try:
            for block in self._sf.blocks(blocksize=int(block_s * self.rate), dtype="float32", always_2d=True):
                mono = block.mean(axis=1, dtype=np.float32)
                last = self._sf.tell() >= self.frames
                out = resampler.resample_chunk(mono, last=last) if resampler is not None else mono
                finite = np.isfinite(out)
                bad += int(out.size - finite.sum())
                total += out.size
                if not finite.all():
                    out = np.where(finite, out, np.float32(0.0))
                yield np.clip(out, -1.0, 1.0).astype(np.float32, copy=False)
        finally:
            self.close()
        if total and bad / total > 0.5:
            raise errors.AudioInvalid(f"{self.shown}: {bad / total:.0%} of the samples are NaN or infinite")
        if bad:
            log.warning("%s: %d NaN/infinite samples replaced by silence", self.shown, bad)

    def close(self) -> None:
        try:
            self._sf.close()
        except Exception:
            pass
        self._fh.close()


def _is_empty_file(fh) -> bool:
    try:
        st = os.fstat(fh.fileno())
    except OSError:
        return False
    return stat.S_ISREG(st.st_mode) and st.st_size == 0  # /dev/zero has size 0 too, and is no empty file


# libsndfile's log for a WAV or AIFF whose data chunk runs past the end of the file:
# "data : 64000 (should be 31978)"
_SHORT_CHUNK = re.compile(r"^(?:data|SSND)\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)


def _truncation(extra_info: str) -> str | None:
    """Why a file holds less audio than its header says, from libsndfile's log; None if it does not."""
    match = _SHORT_CHUNK.search(extra_info or "")
    if not match:
        return None
    promised, present = int(match.group(1)), int(match.group(2))
    if present >= promised:
        return None
    share = present / promised
    return f"it is truncated: {share:.0%} of the audio its header promises is there; transcribing that part"
