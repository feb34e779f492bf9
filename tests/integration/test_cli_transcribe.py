"""`ctrlspeak transcribe` end to end: the real CLI, the real spawned worker, real models."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import soundfile as sf

from ctrlspeak import errors

pytestmark = pytest.mark.integration


def _cli(*args: str, env_extra: dict[str, str] | None = None, cwd=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "ctrlspeak", *args], capture_output=True, text=True,
                          timeout=300, env=env, cwd=cwd)


@pytest.fixture
def clip(tmp_path):
    path = tmp_path / "clip.wav"
    rng = np.random.default_rng(0)
    stereo = (0.05 * rng.standard_normal((44100 * 2, 2))).astype(np.float32)
    sf.write(path, stereo, 44100, subtype="PCM_16")
    return path


def test_json_output_has_worker_and_per_file_timings(test_models, clip, isolated_env):
    out = _cli("transcribe", "--model", str(test_models["tdt"]), "--json", str(clip), str(clip))
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["family"] == "tdt" and doc["device"] == "cpu"
    assert doc["engine"].startswith("pytorch, nemo"), doc["engine"]
    for key in ("start_s", "import_s", "model_load_s", "rss_mb", "pid"):
        assert key in doc["worker"]
    assert len(doc["results"]) == 2
    for r in doc["results"]:
        assert r["audio_s"] == pytest.approx(2.0, abs=0.01)
        assert {"roundtrip_s", "encoder_s", "decode_s", "compute_s", "queued_s"} <= set(r["timings"])
    assert "importing NeMo" in out.stderr  # progress went to stderr, results to stdout


@pytest.mark.parametrize("case,code", [
    ("missing_file", "ERR_AUDIO_FILE"),
    ("corrupt_model", "ERR_MODEL_LOAD"),
    ("unknown_alias", "ERR_MODEL_NOT_FOUND"),
    ("not_cached_offline", "ERR_MODEL_NOT_CACHED"),
])
def test_errors_map_to_one_line_and_exit_status(case, code, test_models, clip, tmp_path, isolated_env):
    args = {
        "missing_file": ["--model", str(test_models["ctc"]), str(tmp_path / "nope.wav")],
        "corrupt_model": ["--model", str(tmp_path / "bad.nemo"), str(clip)],
        "unknown_alias": ["--model", "parakeat", str(clip)],
        "not_cached_offline": ["--model", "canary-180m", "--offline", str(clip)],
    }[case]
    (tmp_path / "bad.nemo").write_bytes(b"\x00" * 1000)
    out = _cli("transcribe", *args)
    assert out.returncode == errors.info_for(code).exit_status, out.stderr
    lines = [line for line in out.stderr.splitlines() if code in line]
    assert lines and lines[-1].startswith("ctrlspeak: "), out.stderr
    assert out.stdout == ""
    if case == "not_cached_offline":
        assert "ctrlspeak models download canary-180m" in out.stderr
    if case == "unknown_alias":
        assert "parakeet-v2" in out.stderr and "canary-v2" in out.stderr


def test_cli_process_never_imports_torch_during_a_real_transcription(test_models, clip):
    code = textwrap.dedent(f"""
        import sys
        from ctrlspeak.cli import main
        if __name__ == "__main__":
            rc = main(["transcribe", "--model", {str(test_models['ctc'])!r}, "--progress", "none", {str(clip)!r}])
            heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "nemo", "lightning"))
            print("RC", rc, "HEAVY", heavy)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert "RC 0 HEAVY []" in out.stdout, out.stdout + out.stderr


def test_models_list_shows_cache_state_without_network(isolated_env):
    out = _cli("models", "list", "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    rows = {r["alias"]: r for r in doc["models"]}
    assert rows["parakeet"]["cached"] == "no" and rows["parakeet"]["default"]
    assert doc["compute_device"]["device"] in ("cpu", "cuda", "mps")
    out = _cli("--version")
    assert out.stdout.startswith("ctrlspeak ")


def test_many_good_and_bad_files_under_a_low_ulimit(test_models, clip, tmp_path, isolated_env, fault_row):
    """Issue 10, items 11-13 in one worker run: more files than descriptors, a file that is no
    audio, and a truncated WAV (its header promises more than the file holds)."""
    import resource

    one = tmp_path / "one.wav"
    sf.write(one, np.zeros(1600, np.int16), 16000, subtype="PCM_16")
    names = []
    for i in range(40):
        name = tmp_path / f"f{i:03d}.wav"
        os.link(one, name)
        names.append(str(name))
    bad = tmp_path / "notes.wav"
    bad.write_text("not audio\n" * 20)
    cut = tmp_path / "cut.wav"
    cut.write_bytes(clip.read_bytes()[: len(clip.read_bytes()) // 2])

    def low_ulimit() -> None:
        # the CLI needs about 15 descriptors of its own: 40 files open at once would not fit
        resource.setrlimit(resource.RLIMIT_NOFILE, (32, 32))

    out = subprocess.run([sys.executable, "-m", "ctrlspeak", "transcribe", "--model", str(test_models["ctc"]),
                          "--json", "--progress", "none", *names, str(clip), str(bad), str(cut)],
                         capture_output=True, text=True, timeout=600, env={**os.environ, "HF_HUB_OFFLINE": "1"},
                         preexec_fn=low_ulimit)
    assert out.returncode == errors.info_for("ERR_AUDIO_FILE").exit_status, out.stderr[-2000:]
    results = json.loads(out.stdout)["results"]
    assert ["error" in r for r in results] == [False] * 41 + [True, False]
    assert results[41]["error"]["code"] == "ERR_AUDIO_FILE"
    assert "truncated" in results[42]["warning"] and results[42]["audio_s"] == pytest.approx(1.0, abs=0.05)
    assert "cut.wav: warning: it is truncated" in out.stderr
    assert "did not stop" not in out.stderr
    fault_row("#12 more files than file descriptors (40 under ulimit -n 32; seen: 300 under 256)",
              "opened one at a time: all transcribed")
    fault_row("#13b a truncated WAV (header longer than the data) among good and bad files",
              "transcribed with a warning; the good ones too, the bad one reported, exit status says so")
