from __future__ import annotations

import os

import numpy as np
import pytest
import soundfile as sf

from ctrlspeak import errors
from ctrlspeak.audio import files as audio


def _tone(rate: int, seconds: float = 1.0, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.mark.parametrize("fmt,subtype,ext", [("WAV", "PCM_16", "wav"), ("FLAC", "PCM_16", "flac"), ("OGG", "VORBIS", "ogg")])
def test_stereo_44k_files_become_16k_mono(tmp_path, fmt, subtype, ext):
    left = _tone(44100)
    stereo = np.stack([left, left], axis=1)
    path = tmp_path / f"x.{ext}"
    sf.write(path, stereo, 44100, format=fmt, subtype=subtype)
    out = audio.load_file(path)
    assert out.dtype == np.float32 and out.ndim == 1
    assert abs(out.size - 16000) <= 1
    # the tone survives: dominant frequency still 440 Hz, amplitude still ~0.5
    spectrum = np.abs(np.fft.rfft(out))
    assert abs(np.argmax(spectrum) * 16000 / out.size - 440) < 3
    assert 0.4 < np.abs(out).max() < 0.6


def test_channel_mix_is_a_mean():
    frames = np.stack([np.full(1600, 0.5, np.float32), np.full(1600, -0.1, np.float32)], axis=1)
    np.testing.assert_allclose(audio.to_mono_16k(frames, 16000), 0.2, atol=1e-6)


def test_int16_is_scaled_not_passed_raw():
    pcm = np.array([0, 16384, -32768, 32767], np.int16)
    out = audio.to_mono_16k(pcm, 16000)
    np.testing.assert_allclose(out, [0.0, 0.5, -1.0, 32767 / 32768], atol=1e-4)


def test_empty_and_nan_audio():
    with pytest.raises(errors.AudioInvalid, match="empty"):
        audio.sanitize(np.zeros(0, np.float32))
    with pytest.raises(errors.AudioInvalid, match="NaN"):
        audio.sanitize(np.full(100, np.nan, np.float32))
    few = np.zeros(100, np.float32)
    few[3] = np.nan
    fixed = audio.sanitize(few)
    assert np.isfinite(fixed).all()
    assert audio.sanitize(np.array([2.0, -3.0], np.float32)).tolist() == [1.0, -1.0]


def test_bad_files(tmp_path):
    with pytest.raises(errors.AudioFileError, match="no such file"):
        audio.load_file(tmp_path / "missing.wav")
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"RIFF....not really")
    with pytest.raises(errors.AudioFileError, match="cannot decode"):
        audio.load_file(junk)
    with pytest.raises(errors.AudioFileError, match="directory"):
        audio.load_file(tmp_path)


def test_non_utf8_path(tmp_path):
    raw = os.fsencode(tmp_path) + b"/caf\xe9-\xff.wav"
    sf.write(raw, _tone(16000), 16000)
    name = os.fsdecode(raw)
    assert audio.load_file(name).size == 16000
    assert "\ufffd" in audio.display_path(name)
