from __future__ import annotations

import socket
from pathlib import Path

import pytest

from ctrlspeak import errors
from ctrlspeak.models import download, registry


def test_required_aliases():
    names = registry.available_models()
    for alias in ("parakeet", "parakeet-v2", "parakeet-1.1b", "parakeet-ctc", "canary", "canary-180m", "canary-v2", "tiny-en"):
        assert alias in names
    assert registry.spec_for("parakeet").hf_id == "nvidia/parakeet-tdt-0.6b-v3"
    assert registry.spec_for("canary").hf_id == "nvidia/canary-1b-flash"
    assert registry.spec_for("canary-v2").hf_id == "nvidia/canary-1b-v2"
    assert registry.DEFAULT_MODEL == "parakeet"


def test_unknown_name_lists_valid_names():
    with pytest.raises(errors.ModelNotFound) as info:
        registry.resolve("parakeat")
    for alias in registry.available_models():
        assert alias in str(info.value)


def test_hf_ids_and_paths(tmp_path):
    ref = registry.resolve("someorg/some-model_v1.2")
    assert (ref.source, ref.hf_id, ref.filename) == ("hf", "someorg/some-model_v1.2", "some-model_v1.2.nemo")
    nemo = tmp_path / "m.nemo"
    nemo.write_bytes(b"x")
    ref = registry.resolve(str(nemo))
    assert ref.source == "file" and ref.path == str(nemo)
    with pytest.raises(errors.ModelNotFound, match="no model file"):
        registry.resolve(str(tmp_path / "missing.nemo"))
    with pytest.raises(errors.ModelNotFound):
        registry.resolve("relative/missing.nemo")


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


def _seed_hf_cache(root: Path, repo: str, filename: str, payload: bytes = b"nemo") -> Path:
    base = root / ("models--" + repo.replace("/", "--"))
    sha = "0123456789abcdef0123456789abcdef01234567"
    (base / "refs").mkdir(parents=True)
    (base / "refs" / "main").write_text(sha)
    snap = base / "snapshots" / sha
    snap.mkdir(parents=True)
    (snap / filename).write_bytes(payload)
    return snap / filename


def test_cache_check_reads_disk_only(tmp_path, no_network):
    ref = registry.resolve("parakeet-v2")
    assert registry.cached_path(ref, str(tmp_path)) is None
    seeded = _seed_hf_cache(tmp_path, ref.hf_id, ref.filename)
    assert registry.cached_path(ref, str(tmp_path)) == seeded
    # a cached model is served with no network at all
    assert download.download(ref, cache_dir=str(tmp_path)) == seeded


def test_not_cached_offline_is_distinct_and_says_how_to_fetch(tmp_path, no_network):
    ref = registry.resolve("canary")
    with pytest.raises(errors.ModelNotCached) as info:
        download.download(ref, cache_dir=str(tmp_path), offline=True)
    assert info.value.code == "ERR_MODEL_NOT_CACHED"
    assert "ctrlspeak models download canary" in info.value.hint
