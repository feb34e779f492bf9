"""`ctrlspeak transcribe` checks its inputs before it starts a worker (issue 10, items 11-13).

In-process and without a worker: a bad file must fail at once, in one clean line."""
from __future__ import annotations

import multiprocessing
import time

import numpy as np
import pytest
import soundfile as sf

from ctrlspeak import cli, errors
from ctrlspeak.audio import files as audio


def bad_files(tmp_path) -> dict[str, object]:
    ok = tmp_path / "ok.wav"
    sf.write(ok, np.zeros(16000, np.int16), 16000, subtype="PCM_16")
    files = {
        "zero_bytes": tmp_path / "zero.wav",
        "header_only": tmp_path / "header.wav",
        "text_renamed": tmp_path / "notes.wav",
        "directory": tmp_path / "a_dir",
        "dev_zero": "/dev/zero",
        "one_hz": tmp_path / "one_hz.wav",
    }
    files["zero_bytes"].write_bytes(b"")
    files["header_only"].write_bytes(ok.read_bytes()[:44])
    files["text_renamed"].write_text("shopping list: milk, eggs\n" * 50)
    files["directory"].mkdir()
    sf.write(files["one_hz"], np.zeros(8000, np.int16), 1, subtype="PCM_16")  # 16 KB "of 2.2 hours"
    return files


def test_bad_files_fail_at_once_in_one_line_each_and_start_no_worker(isolated_env, tmp_path, capsys, fault_row):
    files = bad_files(tmp_path)
    t0 = time.monotonic()
    rc = cli.main(["transcribe", "--model", "tiny-en", "--progress", "none", *map(str, files.values())])
    took = time.monotonic() - t0
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert rc == errors.info_for("ERR_AUDIO_INVALID").exit_status  # the first file's code
    assert len(lines) == len(files) and all(line.startswith("ctrlspeak: ") for line in lines), err
    assert not multiprocessing.active_children(), "no worker for inputs that cannot be transcribed"
    assert took < 2.0, f"{took:.1f} s"  # was ~11 s: a worker started, then stopped while importing NeMo
    assert "BufferedReader" not in err and "did not stop" not in err and "Traceback" not in err
    assert "empty (0 bytes)" in err and "a directory" in err and "format not recognised" in err
    assert "says 1 Hz" in err
    fault_row("#11 transcribe: 0-byte, header-only, text as .wav, a directory, /dev/zero",
              "each refused in one line before any worker starts, well under a second")


@pytest.mark.parametrize("rate", [1, 7999, 384_001])
def test_absurd_sample_rates_are_refused(tmp_path, rate, fault_row):
    path = tmp_path / "odd.wav"
    sf.write(path, np.zeros(64, np.int16), rate, subtype="PCM_16")
    with pytest.raises(errors.AudioFileError, match=f"says {rate} Hz"):
        audio.FileStream(path)
    fault_row("#13 a 16 KB WAV whose header says 1 Hz (2.2 hours after resampling)",
              "refused: rates below 8 kHz or above 384 kHz are a corrupt header (ERR_AUDIO_FILE)")


def test_plausible_rates_are_fine(tmp_path):
    for rate in (8000, 384_000):
        path = tmp_path / f"{rate}.wav"
        sf.write(path, np.zeros(64, np.int16), rate, subtype="PCM_16")
        audio.FileStream(path).close()


def test_a_truncated_wav_is_read_as_far_as_it_goes_and_says_so(tmp_path):
    full = tmp_path / "full.wav"
    sf.write(full, (0.1 * np.ones(32000)).astype(np.float32), 16000, subtype="PCM_16")
    cut = tmp_path / "cut.wav"
    cut.write_bytes(full.read_bytes()[: 44 + 16000 * 2])  # the header promises 2 s, 1 s is there
    stream = audio.FileStream(cut)
    assert stream.truncated and "truncated" in stream.truncated and "50%" in stream.truncated
    samples = sum(block.size for block in stream.blocks())
    assert abs(samples - 16000) <= 2
    whole = audio.FileStream(full)
    assert whole.truncated is None
    whole.close()
