"""The first run's model through the real worker: downloaded from the test hub (by the CLI, or
by the worker itself), then loaded with the hub gone and no connection attempted at all."""
from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from ctrlspeak.models import registry
from ctrlspeak.transfer import human_bytes
from tests.cli_run import cli_env, run_cli
from tests.netaudit import attempts, audit_env, guarded_pids

pytestmark = pytest.mark.integration

SAMPLE = registry.BUNDLED_SAMPLE
#: what the model itself writes; --raw keeps the text pipeline's capital and period out of it
SAID = SAMPLE.with_suffix(".txt").read_text().strip()
#: the hub serves the bundled tiny-en as parakeet (tests/conftest.py HUB_MODELS)
TINY_BYTES = registry.bundled_path(registry.spec_for("tiny-en")).stat().st_size


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _row(env: dict[str, str]) -> dict:
    out = run_cli(env, "models", "list", "--json")
    assert out.returncode == 0, out.stderr
    return next(r for r in json.loads(out.stdout)["models"] if r["alias"] == "parakeet")


def test_downloaded_then_loaded_with_the_hub_stopped_and_no_connection_attempted(tmp_path, test_hub):
    env = cli_env(tmp_path, test_hub.endpoint)
    out = run_cli(env, "models", "download", "parakeet")
    assert out.returncode == 0, out.stderr
    test_hub.stop()
    # the network is cut: the hub is gone, and any proxy points at nothing
    dead = f"http://127.0.0.1:{_dead_port()}"
    overrides, net_log = audit_env(tmp_path)
    offline_env = {**env, **overrides, "HTTPS_PROXY": dead, "ALL_PROXY": dead}
    result = run_cli(offline_env, "transcribe", "--model", "parakeet", "--raw", "--progress", "lines",
                     str(SAMPLE), timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == SAID
    assert len(guarded_pids(net_log)) >= 2, "the guard must run in the CLI and in its spawned worker"
    assert attempts(net_log) == []
    # the load built the weights cache; models list counts it, models remove frees it all
    row = _row(env)
    assert row["cached"] == "yes" and row["weights_cache_bytes"] > 0
    removed = run_cli(env, "models", "remove", "parakeet")
    assert removed.returncode == 0, removed.stderr
    assert f"{human_bytes(TINY_BYTES)} download" in removed.stderr and "fast-start cache)" in removed.stderr
    assert _row(env)["size_bytes"] == 0
    weights = Path(env["XDG_CACHE_HOME"]) / "ctrlspeak" / "weights"
    assert not any("models--nvidia--parakeet-tdt-0.6b-v3" in (e / "source.json").read_text()
                   for e in weights.iterdir() if (e / "source.json").exists())


def test_the_worker_downloads_the_model_itself_with_progress_then_transcribes(tmp_path, test_hub):
    test_hub.bytes_per_s = 3_000_000
    test_hub.fault("drop", after=5_000_000)
    env = cli_env(tmp_path, test_hub.endpoint)
    out = run_cli(env, "transcribe", "--model", "parakeet", "--raw", "--progress", "lines", str(SAMPLE),
                  timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == SAID
    lines = out.stderr.splitlines()
    assert any(line.startswith("ctrlspeak: downloading parakeet: ") and "MB/s" in line and "left" in line
               for line in lines), out.stderr
    assert "ctrlspeak: the connection closed part-way; retrying in 1 s (try 2 of 6)" in lines
    # the download came first, NeMo's import after it
    first_import = next(i for i, line in enumerate(lines) if "importing NeMo" in line)
    last_download = max(i for i, line in enumerate(lines) if "downloading parakeet" in line)
    assert last_download < first_import
    assert [g.range_start for g in test_hub.served("cdn", "GET")] == [None, 5_000_000]
