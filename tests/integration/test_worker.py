"""The real spawned worker with real (tiny, random-weight) NeMo models of every family."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import psutil
import pytest

from ctrlspeak import errors
from ctrlspeak.ipc import TranscribeOptions
from ctrlspeak.models import registry

pytestmark = pytest.mark.integration

EXPECTED_FAMILY = {"tdt": "tdt", "rnnt": "rnnt", "ctc": "ctc", "ctc_char": "ctc", "canary": "aed"}


def _noise(seconds: float, seed: int = 0) -> np.ndarray:
    return (0.05 * np.random.default_rng(seed).standard_normal(int(seconds * 16000))).astype(np.float32)


@pytest.mark.parametrize("family", sorted(EXPECTED_FAMILY))
def test_each_family_transcribes_through_the_spawned_worker(family, test_models, spawn_worker):
    ref = registry.resolve(str(test_models[family]))
    client = spawn_worker(ref)
    ready = client.wait_ready(timeout=180)
    assert ready.family == EXPECTED_FAMILY[family]
    assert ready.device == "cpu" and ready.dtype == "int8+float32" and ready.threads == 2  # the default on CPU
    assert ready.load_s > 0 and ready.rss_bytes > 100 * 2**20 and ready.pid == client.pid
    options = TranscribeOptions(language="en", target_language="de" if family == "canary" else None)
    transcript = client.transcribe(_noise(2.0), options, timeout=120)
    assert isinstance(transcript.text, str)  # random weights: any text, but a real round trip
    t = transcript.timings
    assert t.audio_s == pytest.approx(2.0) and t.compute_s > 0 and t.queued_s >= 0
    if family != "canary":
        assert t.encoder_s > 0 and t.decode_s >= 0
    # pipelined requests come back matched to their ids
    futures = [client.submit(_noise(1.0 + i / 2, seed=i)) for i in range(3)]
    assert [f.result(timeout=120).timings.audio_s for f in futures] == pytest.approx([1.0, 1.5, 2.0])


def test_worker_output_matches_nemo_transcribe(test_models, spawn_worker):
    """Our direct path gives the same text as NeMo's own transcribe() on the same array (with its
    edges settled, as the worker settles every piece's: ctrlspeak.audio.segment.settle_edges)."""
    path = str(test_models["ctc_char"])
    client = spawn_worker(registry.resolve(path))
    client.wait_ready(timeout=180)
    audio = _noise(3.0, seed=7)
    ours = client.transcribe(audio, timeout=120).text
    code = textwrap.dedent(f"""
        import numpy as np
        from nemo.collections.asr.models import ASRModel
        m = ASRModel.restore_from({path!r}, map_location="cpu"); m.eval()
        from ctrlspeak.audio.segment import settle_edges
        a = settle_edges((0.05 * np.random.default_rng(7).standard_normal(48000)).astype(np.float32))
        print("TEXT=" + m.transcribe([a], batch_size=1, verbose=False)[0].text)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    theirs = [line[5:] for line in out.stdout.splitlines() if line.startswith("TEXT=")][0]
    assert ours == theirs.strip()


def test_corrupt_nemo_is_err_model_load(tmp_path, spawn_worker):
    bad = tmp_path / "broken.nemo"
    bad.write_bytes(b"this is not a tar archive" * 100)
    client = spawn_worker(registry.resolve(str(bad)))
    with pytest.raises(errors.ModelLoadError) as info:
        client.wait_ready(timeout=180)
    assert info.value.code == "ERR_MODEL_LOAD" and "broken.nemo" in info.value.message
    assert "Traceback" in info.value.detail
    client.exited.wait(30)
    from ctrlspeak.workers.main import EXIT_BOOT_FAILED
    assert client.exitcode == EXIT_BOOT_FAILED


def test_not_cached_offline_is_err_model_not_cached(tmp_path, spawn_worker):
    ref = registry.resolve("parakeet-v2")
    client = spawn_worker(ref, offline=True, hf_cache_dir=str(tmp_path))
    with pytest.raises(errors.ModelNotCached) as info:
        client.wait_ready(timeout=180)
    assert "ctrlspeak models download parakeet-v2" in info.value.hint


def test_bad_audio_is_a_coded_failure_and_the_worker_survives(test_models, spawn_worker):
    client = spawn_worker(registry.resolve(str(test_models["ctc"])))
    client.wait_ready(timeout=180)
    nan = np.full(16000, np.nan, np.float32)
    with pytest.raises(errors.AudioInvalid):
        client.transcribe(nan, timeout=60)
    with pytest.raises(errors.AudioInvalid):
        client.transcribe(np.zeros(0, np.float32), timeout=60)
    assert client.transcribe(_noise(0.2), timeout=60).timings.audio_s == pytest.approx(0.2)


def test_killed_worker_fails_pending_requests_with_a_code(test_models, spawn_worker):
    client = spawn_worker(registry.resolve(str(test_models["ctc"])))
    client.wait_ready(timeout=180)
    os.kill(client.pid, signal.SIGSTOP)  # hold it so the request is surely in flight
    future = client.submit(_noise(1.0))
    os.kill(client.pid, signal.SIGKILL)
    with pytest.raises(errors.WorkerCrashed, match="SIGKILL"):
        future.result(timeout=30)
    assert client.exited.wait(5)


def test_switching_model_keeps_the_old_one_on_failure(test_models, spawn_worker, tmp_path):
    client = spawn_worker(registry.resolve(str(test_models["ctc"])))
    client.wait_ready(timeout=180)
    bad = tmp_path / "bad.nemo"
    bad.write_bytes(b"junk")
    with pytest.raises(errors.ModelLoadError):
        client.load_model(registry.resolve(str(bad))).result(timeout=120)
    assert client.transcribe(_noise(1.0), timeout=60).model == str(test_models["ctc"])
    ready = client.load_model(registry.resolve(str(test_models["tdt"]))).result(timeout=120)
    assert ready.family == "tdt"
    assert client.transcribe(_noise(1.0), timeout=60).model == str(test_models["tdt"])


def test_worker_never_outlives_its_parent(test_models, tmp_path):
    """SIGKILL the process that spawned the worker: the worker must exit by itself."""
    pid_file = tmp_path / "worker.pid"
    code = textwrap.dedent(f"""
        import pathlib, time
        from ctrlspeak.ipc import ModelRef, WorkerSettings
        from ctrlspeak.supervision.client import WorkerClient
        if __name__ == "__main__":
            c = WorkerClient(WorkerSettings(model=ModelRef("m", "file", path={str(test_models['ctc'])!r}), threads=1))
            c.start()
            c.wait_ready(timeout=180)
            pathlib.Path({str(pid_file)!r}).write_text(str(c.pid))
            time.sleep(600)
    """)
    script = tmp_path / "parent.py"
    script.write_text(code)
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 180
        while not pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        worker = psutil.Process(int(pid_file.read_text()))
        parent.kill()
        parent.wait()
        worker.wait(timeout=10)  # raises TimeoutExpired if the worker lingers as an orphan
    finally:
        parent.kill()
