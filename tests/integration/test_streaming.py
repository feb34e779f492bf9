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


def test_the_spawned_worker_streams_pieces_in_order_and_refuses_a_gap_and_a_foreign_chunk(tiny, spawn_worker):
    """Through the real worker: pieces of one stream give its text so far, ending in what the
    whole-file streaming gives; a piece out of place or in a chunk the model lacks is a coded
    failure (ERR_STREAM); and a whole segment transcribed between pieces is unchanged by them
    (the encoder's own context is back after each piece)."""
    from dataclasses import replace

    from ctrlspeak import errors
    from ctrlspeak.ipc import StreamPiece, TranscribeOptions
    from ctrlspeak.models import registry

    client = spawn_worker(registry.resolve("tiny-en"))
    ready = client.wait_ready(timeout=180)
    assert ready.stream_chunks_ms == (160, 560, 1120) and 4_000_000 < ready.params < 5_000_000
    audio = tiny[1][:16000 * 6]
    whole = client.transcribe(audio, timeout=120).text
    plain = TranscribeOptions()
    texts, at = [], 0
    for size in (4000, 2560, 9000, 16000, audio.size):
        piece = audio[at:at + size]
        if piece.size == 0:
            break
        texts.append(client.transcribe(piece, replace(plain, stream=StreamPiece("s1", at, 160)), timeout=120).text)
        at += piece.size
        assert client.transcribe(audio, timeout=120).text == whole, "a stream piece leaves the model as it was"
    assert len(texts) == 5 and texts[-1].split()[:8] == whole.split()[:8], (texts, whole)
    with pytest.raises(errors.StreamError, match="does not follow"):
        client.transcribe(audio[:3200], replace(plain, stream=StreamPiece("s1", 5, 160)), timeout=120)
    with pytest.raises(errors.StreamError, match=r"does not stream in 300 ms chunks \(its sizes: 160 ms, 560 ms, 1120 ms\)"):
        client.transcribe(audio[:3200], replace(plain, stream=StreamPiece("s2", 0, 300)), timeout=120)
