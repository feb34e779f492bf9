"""``models list`` sizes and ``models remove``: the HF cache entry, partial downloads and the
weights cache (the layouts written by huggingface_hub and models/fastload.py)."""
from __future__ import annotations

import json
import os
from pathlib import Path

from ctrlspeak.models import cache, registry
from tests.cli_run import cli_env, run_cli

PARAKEET = registry.resolve("parakeet")
TINY = registry.resolve("tiny-en")


def _seed_download(hf: Path, ref, payload: bytes, partial: bytes = b"") -> Path:
    """The layout hf_hub_download leaves: a blob, a snapshot link to it, refs/main."""
    repo = hf / f"models--{ref.hf_id.replace('/', '--')}"
    commit = "0123456789abcdef0123456789abcdef01234567"
    etag = "ab" * 32
    (repo / "blobs").mkdir(parents=True)
    (repo / "blobs" / etag).write_bytes(payload)
    if partial:
        (repo / "blobs" / f"{'cd' * 32}.incomplete").write_bytes(partial)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    snap = repo / "snapshots" / commit
    snap.mkdir(parents=True)
    os.symlink(f"../../blobs/{etag}", snap / ref.filename)
    return snap / ref.filename


def _seed_weights(weights: Path, source: Path, name: str, size: int) -> Path:
    entry = weights / name
    entry.mkdir(parents=True)
    (entry / cache.WEIGHTS_SOURCE).write_text(json.dumps({"path": os.path.realpath(source), "size": 1}))
    (entry / "weights.pt").write_bytes(b"w" * size)
    return entry


def _row(env, alias):
    out = run_cli(env, "models", "list", "--json")
    assert out.returncode == 0, out.stderr
    return next(r for r in json.loads(out.stdout)["models"] if r["alias"] == alias)


def test_list_shows_sizes_and_remove_frees_the_download_and_its_weights_cache(tmp_path):
    env = cli_env(tmp_path)
    hf, weights = Path(env["HF_HUB_CACHE"]), Path(env["XDG_CACHE_HOME"]) / "ctrlspeak" / "weights"
    model = _seed_download(hf, PARAKEET, b"n" * 3_000_000, partial=b"p" * 500_000)
    mine = _seed_weights(weights, model, "a" * 32, 2_000_000)
    theirs = _seed_weights(weights, Path(TINY.path), "b" * 32, 1_000_000)  # tiny-en's: must stay
    row = _row(env, "parakeet")
    assert (row["cached"], row["download_bytes"], row["partial_bytes"]) == ("yes", 3_000_000, 500_000)
    assert row["weights_cache_bytes"] >= 2_000_000 and row["size_bytes"] == sum(
        row[k] for k in ("download_bytes", "partial_bytes", "weights_cache_bytes"))
    table = run_cli(env, "models", "list").stdout
    assert any(line.split()[:1] == ["*"] and line.split()[-2:] == ["5.5", "MB"] for line in table.splitlines()), table

    out = run_cli(env, "models", "remove", "parakeet")
    assert out.returncode == 0, out.stderr
    assert out.stderr.startswith(f"ctrlspeak: removed parakeet: {row['size_bytes'] / 1e6:.1f} MB freed "
                                 "(3.0 MB download, 500 kB partial download, 2.0 MB fast-start cache)"), out.stderr
    assert not (hf / "models--nvidia--parakeet-tdt-0.6b-v3").exists() and not mine.exists() and theirs.exists()
    row = _row(env, "parakeet")
    assert (row["cached"], row["size_bytes"]) == ("no", 0)
    again = run_cli(env, "models", "remove", "parakeet")
    assert again.returncode == 0 and "takes no space in the caches: nothing to remove" in again.stderr


def test_removing_a_bundled_model_frees_its_weights_cache_and_keeps_the_file(tmp_path):
    env = cli_env(tmp_path)
    weights = Path(env["XDG_CACHE_HOME"]) / "ctrlspeak" / "weights"
    entry = _seed_weights(weights, Path(TINY.path), "b" * 32, 1_000_000)
    out = run_cli(env, "models", "remove", "tiny-en")
    assert out.returncode == 0, out.stderr
    assert "removed tiny-en: 1.0 MB freed (1.0 MB fast-start cache) (the model file itself stays)" in out.stderr
    assert not entry.exists() and Path(TINY.path).is_file()


def test_a_partial_download_is_listed_as_partial(tmp_path):
    env = cli_env(tmp_path)
    blobs = Path(env["HF_HUB_CACHE"]) / "models--nvidia--canary-180m-flash" / "blobs"
    blobs.mkdir(parents=True)
    (blobs / f"{'e' * 64}.incomplete").write_bytes(b"x" * 1234)
    row = _row(env, "canary-180m")
    assert (row["cached"], row["partial_bytes"], row["size_bytes"]) == ("partial", 1234, 1234)
