"""Cache-aware streaming, live (models/streaming.py), on the bundled tiny-en (a cache-aware
streaming model with real weights): audio fed as it comes, in pieces of any size, gives the
text NeMo's own buffer gives on the whole recording, and its mel frames are the offline ones."""
from __future__ import annotations

import os
import random

import numpy as np
import pytest

from tests.conftest import load_tinyen

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def tiny():
    import torch
    from nemo.collections.asr.models import ASRModel

    from ctrlspeak.models import registry

    load_tinyen()
    from tinyen import datasets, speech

    torch.set_num_threads(2)
    cwd = os.getcwd()
    try:
        model = ASRModel.restore_from(registry.resolve("tiny-en").path, map_location="cpu").eval()
    finally:
        os.chdir(cwd)
    text = " ".join(it["text"] for it in datasets.build_datasets(0, 3, 0, 0).heldout_natural)
    audio = speech.synth(text, voice="en-us", rate=160, pitch=50)
    return model, audio


@pytest.mark.parametrize("right_context", [1, 6])
def test_pieces_of_any_size_give_the_buffers_text(tiny, right_context):
    from ctrlspeak.models.streaming import LiveStream
    from tinyen import evaluate

    model, audio = tiny
    expected = evaluate.transcribe_streaming(model, audio, right_context)
    samples = audio.astype(np.float32) / 32767.0 if audio.dtype == np.int16 else audio
    rng = random.Random(right_context)
    stream = LiveStream(model, right_context)
    partials, at = [], 0
    while at < samples.size:  # 10-300 ms pieces, as a microphone's callbacks might give
        step = rng.randint(160, 4800)
        partials.append(stream.feed(samples[at:at + step]))
        at += step
    final = stream.finish()
    assert final == expected and final
    assert len(set(partials)) > 5, "text came while the audio was still arriving"
    words = final.split()
    for p in partials:  # the hypothesis only grows: all but its last word are final's
        head = p.split()[:-1]
        assert words[:len(head)] == head, (p, final)
    assert list(model.encoder.att_context_size) == [70, 13], "the model's default context is back"


def test_the_mel_frames_are_the_whole_recordings(tiny):
    import torch

    from ctrlspeak.models.streaming import LiveStream

    model, audio = tiny
    samples = (audio.astype(np.float32) / 32767.0 if audio.dtype == np.int16 else audio)[:48000]
    stream = LiveStream(model, 1)
    for at in range(0, samples.size, 1000):
        stream.feed(samples[at:at + 1000])
    stream.finish()
    with torch.inference_mode():
        whole, _ = model.preprocessor(input_signal=torch.from_numpy(samples)[None], length=torch.tensor([samples.size]))
    live = stream.mel
    assert live.shape == whole.shape
    assert torch.allclose(live, whole, atol=1e-4), float((live - whole).abs().max())
