"""models/tdt_greedy.py against NeMo's own greedy TDT decoding, on tiny-en (real weights).

80 held-out utterances (40 natural sentences, 40 random word sequences, espeak-ng): the text of
greedy_tdt must equal ``model.transcribe``'s, and its token ids must equal those of
``decoding.rnnt_decoder_predictions_tensor`` on the same encoder output, float32 and with the
encoder int8-quantised.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import load_tinyen

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
MODEL = REPO / "models" / "data" / "tiny-en.nemo"
SAMPLE_RATE = 16000


def _restore():
    import os

    from nemo.collections.asr.models import ASRModel

    cwd = os.getcwd()
    try:
        m = ASRModel.restore_from(str(MODEL), map_location="cpu")
    finally:
        os.chdir(cwd)  # restore_from chdirs into its temp dir
    return m.eval()


@pytest.fixture(scope="module")
def model():
    return _restore()


@pytest.fixture(scope="module")
def utterances() -> list[tuple[str, np.ndarray]]:
    load_tinyen()
    from tinyen import datasets, speech

    plan = datasets.build_datasets(0, 40, 40, 0)
    texts = [item["text"] for item in plan.heldout_natural + plan.heldout_random]
    assert len(texts) == 80
    out = []
    for text in texts:
        audio = speech.synth(text, voice="en-us", rate=160, pitch=50).astype(np.float32)
        # transcribe() pads clips under 1 s itself; pad here so that both paths see the same audio
        if audio.size < SAMPLE_RATE:
            audio = np.pad(audio, (0, SAMPLE_RATE - audio.size))
        out.append((text, audio))
    return out


def _encode(model, audio: np.ndarray):
    import torch

    with torch.inference_mode():
        signal = torch.from_numpy(audio).unsqueeze(0)
        length = torch.tensor([audio.shape[0]])
        processed, processed_len = model.preprocessor(input_signal=signal, length=length)
        return model.encoder(audio_signal=processed, length=processed_len)


def _nemo_ids(model, encoded, encoded_len) -> list[int]:
    import torch

    with torch.inference_mode():
        hyps = model.decoding.rnnt_decoder_predictions_tensor(
            encoder_output=encoded, encoded_lengths=encoded_len, return_hypotheses=True)
    seq = hyps[0].y_sequence
    return [int(x) for x in (seq.tolist() if hasattr(seq, "tolist") else seq)]


def test_tiny_en_is_supported(model):
    from ctrlspeak.models import tdt_greedy

    assert tdt_greedy.supports(model) is None
    params = tdt_greedy.params_of(model)
    assert params.durations == (0, 1, 2, 3, 4) and params.max_symbols == 10
    assert params.blank == model.tokenizer.vocab_size


def test_text_equals_transcribe_on_80_heldout_utterances(model, utterances):
    from ctrlspeak.models import tdt_greedy

    try:
        hyps = model.transcribe([audio for _, audio in utterances], batch_size=1, verbose=False, num_workers=0)
    finally:
        model.eval()  # transcribe() leaves the modules in train mode
    expected = [h if isinstance(h, str) else h.text for h in hyps]
    mismatches = []
    nonempty = 0
    for (_, audio), want in zip(utterances, expected):
        encoded, encoded_len = _encode(model, audio)
        got = tdt_greedy.greedy_tdt_text(model, encoded, int(encoded_len[0]))
        nonempty += bool(got.strip())
        if got != want:
            mismatches.append((want, got))
    assert not mismatches, mismatches[:5]
    assert nonempty >= 70  # the model really speaks: equality of empty strings proves nothing


@pytest.mark.parametrize("mkldnn", [True, False], ids=["mkldnn", "no-mkldnn"])
def test_ids_equal_nemo_decoding_float32(model, utterances, mkldnn):
    """The same token ids (not only the same text) as NeMo's greedy_batch, with and without
    mkldnn (the worker decodes with it off)."""
    import torch

    from ctrlspeak.models import tdt_greedy

    with torch.backends.mkldnn.flags(enabled=mkldnn):
        for text, audio in utterances[::2]:
            encoded, encoded_len = _encode(model, audio)
            want = _nemo_ids(model, encoded, encoded_len)
            assert tdt_greedy.greedy_tdt(model, encoded, int(encoded_len[0])) == want, text


def test_ids_equal_nemo_decoding_int8_encoder(utterances):
    from ctrlspeak.models import tdt_greedy
    from ctrlspeak.models.int8 import quantize_encoder

    quantised = _restore()  # a model of its own: NeMo models do not deepcopy
    assert quantize_encoder(quantised) > 0
    quantised.eval()
    for text, audio in utterances:
        encoded, encoded_len = _encode(quantised, audio)
        want = _nemo_ids(quantised, encoded, encoded_len)
        assert tdt_greedy.greedy_tdt(quantised, encoded, int(encoded_len[0])) == want, text


def test_backend_decodes_tdt_with_the_loop_and_the_same_text(utterances):
    """models/backends.py switches the loop on for tiny-en on CPU; its text equals NeMo's
    decoding's (the same Backend with the switch off) through the whole direct path."""
    import dataclasses

    from ctrlspeak.ipc import TranscribeOptions
    from ctrlspeak.models import backends

    backend = backends.load(str(MODEL), "cpu", lambda *_: None)
    assert backend.family == "tdt" and backend.tdt_loop
    assert not backends.load(str(MODEL), "cpu", lambda *_: None, tdt_loop=False).tdt_loop
    nemo = dataclasses.replace(backend, tdt_loop=False)
    # what WorkerReady.engine (transcribe --json, status --json) reports
    assert (backend.engine, nemo.engine) == ("pytorch, nemo + own tdt decode", "pytorch, nemo")
    for _, audio in utterances[::8]:
        ours_text = backend.transcribe(audio, TranscribeOptions())[0]
        assert ours_text and ours_text == nemo.transcribe(audio, TranscribeOptions())[0]
