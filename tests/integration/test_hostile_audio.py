"""Odd and hostile audio through `ctrlspeak transcribe`: a clear error or correct handling."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import numpy as np
import psutil
import pytest
import soundfile as sf

pytestmark = pytest.mark.integration


def _run(model, *files, **popen):
    return subprocess.run([sys.executable, "-m", "ctrlspeak", "transcribe", "--model", str(model), "--json",
                           "--progress", "none", *map(str, files)], capture_output=True, text=True, timeout=900,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"}, **popen)


def test_odd_inputs_in_one_run(test_models, tmp_path):
    rng = np.random.default_rng(0)
    files = {}
    files["empty"] = tmp_path / "empty.wav"
    sf.write(files["empty"], np.zeros(0, np.float32), 16000)
    files["silent"] = tmp_path / "silent.wav"
    sf.write(files["silent"], np.zeros(32000, np.int16), 16000)
    files["clipped"] = tmp_path / "clipped.wav"
    sf.write(files["clipped"], np.clip(3 * rng.standard_normal(32000), -1, 1).astype(np.float32), 16000,
             subtype="PCM_16")
    files["nan"] = tmp_path / "nan.wav"
    sf.write(files["nan"], np.full(32000, np.nan, np.float32), 16000, subtype="FLOAT")
    files["over_full_scale"] = tmp_path / "loud.wav"
    sf.write(files["over_full_scale"], (5 * rng.standard_normal(32000)).astype(np.float32), 16000, subtype="FLOAT")
    files["stereo_44k"] = tmp_path / "stereo.flac"
    sf.write(files["stereo_44k"], (0.1 * rng.standard_normal((88200, 2))).astype(np.float32), 44100)
    out = _run(test_models["ctc"], *files.values())
    results = dict(zip(files, json.loads(out.stdout)["results"]))
    assert results["empty"]["error"]["code"] == "ERR_AUDIO_INVALID"
    assert results["nan"]["error"]["code"] == "ERR_AUDIO_INVALID"
    for name in ("silent", "clipped", "over_full_scale", "stereo_44k"):
        assert "text" in results[name], results[name]
        assert results[name]["audio_s"] == pytest.approx(2.0, abs=0.01)
    assert out.returncode == 15  # the first failure's status: the others still came out


def test_sixty_minute_recording_keeps_memory_bounded(test_models, tmp_path):
    path = tmp_path / "hour.wav"
    rng = np.random.default_rng(1)
    with sf.SoundFile(path, "w", samplerate=16000, channels=1, subtype="PCM_16") as f:
        for _ in range(60 * 60 // 10):  # 10 s blocks: 8 s of "speech", 2 s of pause
            block = np.concatenate([0.2 * rng.standard_normal(8 * 16000), np.zeros(2 * 16000)])
            f.write(block.astype(np.float32))
    proc = subprocess.Popen([sys.executable, "-m", "ctrlspeak", "transcribe", "--model", str(test_models["ctc"]),
                             "--json", "--progress", "none", str(path)], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    peak = [0]

    def watch():
        p = psutil.Process(proc.pid)
        while proc.poll() is None:
            try:
                peak[0] = max(peak[0], p.memory_info().rss)
            except psutil.NoSuchProcess:
                return
            threading.Event().wait(0.2)

    watcher = threading.Thread(target=watch)
    watcher.start()
    stdout, _ = proc.communicate(timeout=1200)
    watcher.join()
    doc = json.loads(stdout)
    assert proc.returncode == 0
    assert doc["results"][0]["audio_s"] == pytest.approx(3600, abs=1)
    assert doc["results"][0]["pieces"] >= 120
    # the whole hour as float32 would be 230 MB on its own; the CLI holds a few pieces only
    assert peak[0] < 200 * 2**20, f"CLI peak RSS {peak[0] / 2**20:.0f} MB"
