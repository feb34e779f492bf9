"""The tiny-en training script: data generation, a few training steps, save/restore, the sample.

Needs espeak-ng (a declared system dependency; scripts/setup.sh installs it): no skip.
"""
from __future__ import annotations

import importlib.util
import os
import random
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "train_tiny_model.py"


@pytest.fixture(scope="module")
def ttm():
    spec = importlib.util.spec_from_file_location("ctrlspeak_scripts_train_tiny_model", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # the generation pool pickles its worker by module name
    spec.loader.exec_module(module)
    return module


def test_import_has_no_side_effects(ttm):
    # importing the script must not import NeMo (that happens inside functions)
    assert hasattr(ttm, "main") and hasattr(ttm, "train_model")
    assert ttm.WORDS_FILE.is_file()


def test_error_rates_and_dropped_words(ttm):
    assert ttm.normalize_text("Hello,  World! It's") == "hello world it's"
    r = ttm.error_rates(["a b c d"], ["a x c"])
    assert r["wer"] == pytest.approx(0.5) and r["words"] == 4
    assert ttm.error_rates(["abc"], ["abd"])["cer"] == pytest.approx(1 / 3)
    d = ttm.dropped_words(" ".join("w%d" % i for i in range(20)),
                          " ".join("w%d" % i for i in range(1, 19) if i != 10))
    assert d == {"start": ["w0"], "middle": ["w10"], "end": ["w19"]}


def test_heldout_and_sample_never_in_training(ttm):
    train, heldout, longs = ttm.build_datasets(300, 50, 2, seed=7)
    train_sents = {s for it in train for s in it["texts"]}
    reserved = {it["text"] for it in heldout} | {s for it in longs for s in it["texts"]}
    reserved.add(ttm.sample_sentence(seed=7))
    assert not train_sents & reserved
    assert len(train) == 300 and len(heldout) == 50 and len(longs) == 2
    for it in train + heldout:
        assert it["voice"] in ttm.VOICES
        assert 140 <= it["rate"] <= 190 and 30 <= it["pitch"] <= 70
        for s in it["texts"]:
            assert 3 <= len(s.split()) <= 12
    # deterministic
    again = ttm.build_datasets(300, 50, 2, seed=7)
    assert [it["text"] for it in again[0]] == [it["text"] for it in train]


def test_bundled_sample_is_reproducible(ttm, tmp_path):
    wav, txt = ttm.make_sample(tmp_path)
    text = txt.read_text().strip()
    assert 8 <= len(text.split()) <= 10 and text == ttm.normalize_text(text)
    with wave.open(str(wav)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (16000, 1, 2)
        assert 3.0 <= w.getnframes() / 16000 <= 6.0
    bundled = REPO / "models" / "data"
    assert (bundled / "sample-en.txt").read_text().strip() == text
    assert (bundled / "sample-en.wav").read_bytes() == wav.read_bytes()


def test_train_few_steps_loss_falls_and_save_restore_round_trips(ttm, tmp_path):
    import torch

    torch.set_num_threads(2)
    train, heldout, _ = ttm.build_datasets(8, 2, 0, seed=3)
    audio = ttm.synthesize(train + heldout, procs=2)
    assert all(a.dtype == np.int16 and 0.5 * 16000 < len(a) < 16 * 16000 for a in audio)
    texts = [it["text"] for it in train]
    tok = ttm.train_tokenizer(sorted(set(texts)), tmp_path / "tok", vocab_size=40)
    cfg = ttm.model_config(tok, "ctc", d_model=32, n_layers=1, n_heads=2, subsampling=8,
                          conv_channels=32)
    model = ttm.build_model(cfg)
    assert ttm.count_params(model) < 200_000

    res = ttm.train_model(model, audio[:8], texts, epochs=1, batch_size=8, lr=3e-3, warmup=2,
                          seed=3, max_steps=30, log_every=0)
    losses = res["losses"]
    assert res["steps"] == 30 and all(np.isfinite(losses))
    # one batch seen 30 times: a model that learns at all fits it well below where it started
    assert np.mean(losses[-3:]) < 0.6 * np.mean(losses[:3]), losses

    out = tmp_path / "m.nemo"
    cwd = os.getcwd()
    try:
        model.save_to(str(out))
        from nemo.collections.asr.models import ASRModel

        restored = ASRModel.restore_from(str(out), map_location="cpu")
    finally:
        os.chdir(cwd)
    assert os.getcwd() == cwd
    model.eval()
    restored.eval()
    x, xl = ttm._pad_batch(audio[8:])
    with torch.inference_mode():
        a = model.forward(input_signal=x, input_signal_length=xl)[0]
        b = restored.forward(input_signal=x, input_signal_length=xl)[0]
    assert a.shape == b.shape and torch.allclose(a, b, atol=1e-5)
    assert ttm.transcribe_arrays(model, audio[8:]) == ttm.transcribe_arrays(restored, audio[8:])
