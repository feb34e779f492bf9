"""Encoder speed options: SDPA attention (the same output as NeMo's manual path) and the int8 encoder."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ctrlspeak.ipc import TranscribeOptions

pytestmark = pytest.mark.integration

torch = pytest.importorskip("torch")

REPO = Path(__file__).resolve().parents[2]


def _speech() -> np.ndarray:
    import soundfile as sf

    audio, rate = sf.read(REPO / "models" / "data" / "sample-en.wav", dtype="float32")
    assert rate == 16000
    return audio


def _encode(model, audio):
    x = torch.from_numpy(audio).unsqueeze(0)
    with torch.inference_mode():
        feats, flen = model.preprocessor(input_signal=x, length=torch.tensor([x.shape[1]]))
        return model.encoder(audio_signal=feats, length=flen)[0]


def _attention_flags(model) -> list[bool]:
    return [m.use_pytorch_sdpa for m in model.encoder.modules()
            if type(m).__name__ in ("MultiHeadAttention", "RelPositionMultiHeadAttention")]


@pytest.mark.parametrize("family", ("tdt", "ctc", "canary"))
def test_sdpa_changes_the_path_not_the_output(family, test_models):
    from ctrlspeak.models import backends

    model, _ = backends.restore(str(test_models[family]), torch.device("cpu"))
    flags = _attention_flags(model)
    assert flags and not any(flags), "the test models are saved with the manual attention path"
    audio = np.random.default_rng(1).standard_normal(40000).astype(np.float32) * 0.1
    manual = _encode(model, audio)
    assert backends.use_sdpa(model) == len(flags)
    assert all(_attention_flags(model))
    fast = _encode(model, audio)
    torch.testing.assert_close(fast, manual, rtol=1e-4, atol=1e-5)
    assert backends.use_sdpa(model) == 0  # already on: nothing to change


def test_tiny_en_says_the_same_with_sdpa():
    """tiny-en has real weights: the transcript of real speech must not change."""
    from ctrlspeak.models import backends, registry

    path = str(registry.cached_path(registry.resolve("tiny-en")))
    model, _ = backends.restore(path, torch.device("cpu"))
    backend = backends.Backend(model, backends.family_of(model), torch.device("cpu"), None)
    audio = _speech()
    opts = TranscribeOptions(punctuation=False)
    manual = backend.transcribe(audio, opts)[0]
    manual_encoded = _encode(model, audio)
    backends.use_sdpa(model)
    assert backend.transcribe(audio, opts)[0] == manual
    assert len(manual.split()) >= 5
    torch.testing.assert_close(_encode(model, audio), manual_encoded, rtol=1e-4, atol=1e-5)


def test_int8_encoder_is_quantised_and_still_hears_the_sentence():
    """quantize = int8 (the default on CPU): every encoder Linear becomes a dynamic int8 one, the output
    stays close, and tiny-en (real weights) still gets the bundled sentence right."""
    from ctrlspeak.models import backends, registry

    path = str(registry.cached_path(registry.resolve("tiny-en")))
    model, _ = backends.restore(path, torch.device("cpu"))
    linears = sum(isinstance(m, torch.nn.Linear) for m in model.encoder.modules())
    audio = _speech()
    plain = _encode(model, audio)
    assert backends.quantize_encoder(model) == linears > 0
    assert not any(isinstance(m, torch.nn.Linear) for m in model.encoder.modules())
    quantised = _encode(model, audio)
    assert not torch.equal(quantised, plain)
    assert float((quantised - plain).norm() / plain.norm()) < 0.1
    backend = backends.Backend(model, backends.family_of(model), torch.device("cpu"), None)
    expected = (REPO / "models" / "data" / "sample-en.txt").read_text().strip()
    assert backend.transcribe(audio, TranscribeOptions(punctuation=False))[0] == expected


@pytest.mark.parametrize("quantize", ("int8", "off"))
def test_the_worker_applies_the_encoder_options(quantize):
    """quantize travels from WorkerSettings through the spawned worker's load (int8 is the
    default), and tiny-en gets the bundled sentence right either way."""
    from ctrlspeak.config import Config
    from ctrlspeak.ipc import WorkerSettings
    from ctrlspeak.models import registry
    from ctrlspeak.supervision.client import WorkerClient

    assert Config().quantize == WorkerSettings(model=registry.resolve("tiny-en")).quantize == "int8"
    messages: list[str] = []
    client = WorkerClient(WorkerSettings(model=registry.resolve("tiny-en"), threads=2, quantize=quantize),
                          on_progress=lambda p: messages.append(p.message))
    client.start()
    try:
        ready = client.wait_ready(timeout=300)
        expected = (REPO / "models" / "data" / "sample-en.txt").read_text().strip()
        assert client.transcribe(_speech(), timeout=120).text == expected
    finally:
        client.close(timeout=10)
    assert ready.dtype == ("int8+float32" if quantize == "int8" else "float32")
    assert any("int8" in m for m in messages) == (quantize == "int8"), messages
