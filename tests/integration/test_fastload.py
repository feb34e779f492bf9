"""The weights cache (models/fastload.py): same outputs as restore_from, rebuilt when the file changes."""
from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

from ctrlspeak.ipc import ModelRef, TranscribeOptions

pytestmark = pytest.mark.integration

torch = pytest.importorskip("torch")

FAMILIES = ("tdt", "rnnt", "ctc", "ctc_char", "canary")


def _audio(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(32000) / 16000
    return (0.3 * np.sin(2 * np.pi * 220 * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)


def _plain(path):
    from ctrlspeak.models import backends

    return backends.restore(str(path), torch.device("cpu"))[0]


def _encode(model, audio):
    x = torch.from_numpy(audio).unsqueeze(0)
    with torch.inference_mode():
        feats, flen = model.preprocessor(input_signal=x, length=torch.tensor([x.shape[1]]))
        return model.encoder(audio_signal=feats, length=flen)[0]


@pytest.mark.parametrize("family", FAMILIES)
def test_cache_gives_the_same_model_as_restore_from(family, test_models, tmp_path):
    from ctrlspeak.models import backends

    src = tmp_path / f"{family}.nemo"
    shutil.copy(test_models[family], src)
    root = tmp_path / "weights"
    cwd = os.getcwd()
    first, cached_first = backends.restore(str(src), torch.device("cpu"), str(root))
    second, cached_second = backends.restore(str(src), torch.device("cpu"), str(root))
    assert os.getcwd() == cwd
    assert (cached_first, cached_second) == (False, True)
    plain = _plain(src)
    assert type(second) is type(plain) and not second.training
    a, b = plain.state_dict(), second.state_dict()
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    audio = _audio()
    assert torch.equal(_encode(plain, audio), _encode(second, audio))
    fam = backends.family_of(second)
    opts = TranscribeOptions(punctuation=False)
    plain_text = backends.Backend(plain, fam, torch.device("cpu"), None).transcribe(audio, opts)[0]
    cached_text = backends.Backend(second, fam, torch.device("cpu"), None).transcribe(audio, opts)[0]
    assert cached_text == plain_text


def test_a_changed_file_rebuilds_and_a_damaged_entry_falls_back(test_models, tmp_path):
    from ctrlspeak.models import backends, fastload

    src = tmp_path / "m.nemo"
    root = tmp_path / "weights"
    shutil.copy(test_models["ctc"], src)
    backends.restore(str(src), torch.device("cpu"), str(root))
    old_entries = sorted(p.name for p in root.iterdir())
    assert len(old_entries) == 1

    # the file is replaced by another model: a new key, the old entry removed, new weights used
    shutil.copy(test_models["ctc_char"], src)
    os.utime(src, ns=(os.stat(src).st_atime_ns, os.stat(src).st_mtime_ns + 10**9))
    model, cached = backends.restore(str(src), torch.device("cpu"), str(root))
    assert not cached and backends.family_of(model) == "ctc"
    entries = sorted(p.name for p in root.iterdir())
    assert len(entries) == 1 and entries != old_entries
    assert type(model).__name__ == type(_plain(test_models["ctc_char"])).__name__

    # a truncated weights file: restore still works (plain path) and the entry is rebuilt
    weights = root / entries[0] / fastload.WEIGHTS
    weights.write_bytes(weights.read_bytes()[:100])
    model, cached = backends.restore(str(src), torch.device("cpu"), str(root))
    assert not cached
    audio = _audio(1)
    assert torch.equal(_encode(model, audio), _encode(_plain(src), audio))
    assert backends.restore(str(src), torch.device("cpu"), str(root))[1] is True


def test_an_unwritable_cache_only_costs_speed(test_models, tmp_path):
    from ctrlspeak.models import backends

    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    model, cached = backends.restore(str(test_models["tdt"]), torch.device("cpu"), str(blocker / "weights"))
    assert not cached and backends.family_of(model) == "tdt"


def test_the_worker_uses_the_cache_on_its_second_start(test_models, tmp_path):
    from ctrlspeak.ipc import WorkerSettings
    from ctrlspeak.supervision.client import WorkerClient

    ref = ModelRef("tdt", "file", path=str(test_models["tdt"]))
    root = tmp_path / "weights"
    texts = []
    for expected in ("restored a tdt model", "restored a tdt model from the weights cache"):
        messages: list[str] = []
        client = WorkerClient(WorkerSettings(model=ref, threads=1, weights_cache_dir=str(root)),
                              on_progress=lambda p: messages.append(p.message))
        client.start()
        try:
            client.wait_ready(timeout=180)
            texts.append(client.transcribe(_audio(), timeout=120).text)
        finally:
            client.close(timeout=10)
        assert expected in messages, messages
    assert texts[0] == texts[1]


@pytest.mark.parametrize("family", ("tdt", "ctc", "canary"))
def test_int8_weights_are_added_to_the_entry_and_give_the_same_model(family, test_models, tmp_path, monkeypatch):
    from ctrlspeak.models import backends, fastload, int8

    src = tmp_path / f"{family}.nemo"
    shutil.copy(test_models[family], src)
    root = tmp_path / "weights"
    cpu = torch.device("cpu")
    assert backends.restore(str(src), cpu, str(root))[1] is False  # a float entry only
    (entry,) = root.iterdir()
    assert not (entry / fastload.WEIGHTS_INT8).exists()
    quantised_from_float, cached = backends.restore(str(src), cpu, str(root), int8_encoder=True)
    assert cached and (entry / fastload.WEIGHTS_INT8).is_file(), "the first int8 load adds the int8 weights"

    def refuse(model):
        raise AssertionError("the int8 weights in the cache must be used, not quantised again")

    monkeypatch.setattr(int8, "quantize_encoder", refuse)
    from_cache, cached = backends.restore(str(src), cpu, str(root), int8_encoder=True)
    monkeypatch.undo()
    assert cached and not from_cache.training
    assert not any(isinstance(m, torch.nn.Linear) for m in from_cache.encoder.modules())
    plain = backends.restore(str(src), cpu, None, int8_encoder=True)[0]  # restore_from, then quantised
    audio = _audio(2)
    reference = _encode(plain, audio)
    assert torch.equal(_encode(quantised_from_float, audio), reference)
    assert torch.equal(_encode(from_cache, audio), reference)
    fam = backends.family_of(plain)
    opts = TranscribeOptions(punctuation=False)
    texts = {backends.Backend(m, fam, cpu, None).transcribe(audio, opts)[0] for m in (plain, from_cache)}
    assert len(texts) == 1


def test_damaged_int8_weights_fall_back_and_are_rebuilt(test_models, tmp_path):
    from ctrlspeak.models import backends, fastload

    src = tmp_path / "m.nemo"
    shutil.copy(test_models["ctc"], src)
    root = tmp_path / "weights"
    cpu = torch.device("cpu")
    backends.restore(str(src), cpu, str(root), int8_encoder=True)
    (entry,) = root.iterdir()
    damaged = entry / fastload.WEIGHTS_INT8
    damaged.write_bytes(damaged.read_bytes()[:100])
    model, cached = backends.restore(str(src), cpu, str(root), int8_encoder=True)
    assert not cached and not any(isinstance(m, torch.nn.Linear) for m in model.encoder.modules())
    audio = _audio(3)
    assert torch.equal(_encode(model, audio), _encode(backends.restore(str(src), cpu, None, True)[0], audio))
    assert backends.restore(str(src), cpu, str(root), int8_encoder=True)[1] is True
