"""SDPA attention (backends.use_sdpa): the same encoder output and text as NeMo's manual path."""
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

    audio, rate = sf.read(REPO / "samples" / "sample-en.wav", dtype="float32")
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
