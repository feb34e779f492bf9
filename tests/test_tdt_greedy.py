"""models/tdt_greedy.py against NeMo's greedy_batch TDT decoding on tiny random decoders.

NeMo's RNNTDecoder, RNNTJoint and RNNTDecoding with random weights (scripts/bench_decode.py
builds them); the blank and duration-0 logits are biased to force the edge cases: nothing but
blank, a token on every frame, the max-symbols cap on every frame. Real speech is in
tests/integration/test_tdt_greedy.py.
"""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("nemo.collections.asr")

from ctrlspeak.models import tdt_greedy  # noqa: E402
from tests.conftest import load_script  # noqa: E402

bench = load_script("bench_decode")
VOCAB, HIDDEN = 12, 16


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # tiny matrices: thread hand-offs cost more than the maths (and crawl on a busy machine)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _model(**kw):
    kw.setdefault("vocab", VOCAB)
    return bench.random_tdt(pred_hidden=HIDDEN, joint_hidden=HIDDEN, **kw)


def _encoded(frames: int, seed: int = 0) -> torch.Tensor:
    return torch.randn((1, HIDDEN, frames), generator=torch.Generator().manual_seed(seed)) * 2


def _both(model, encoded: torch.Tensor, length: int) -> tuple[list[int], list[int]]:
    with torch.inference_mode():
        ours = tdt_greedy.greedy_tdt(model, encoded, length)
        nemo = bench.nemo_ids(model, encoded, torch.tensor([length]))
    return ours, nemo


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("max_symbols", [1, 2, 10])
@pytest.mark.parametrize("durations", [(0, 1, 2, 3, 4), (0, 2, 4), (1, 2)])
def test_random_decoders_match_nemo(seed, max_symbols, durations):
    model = _model(durations=durations, max_symbols=max_symbols, seed=seed, blank_bias=(-1.0, 0.0, 0.3)[seed % 3])
    assert tdt_greedy.supports(model) is None
    emitted = 0
    for frames, length in ((1, 1), (2, 2), (7, 7), (30, 30), (30, 17)):
        ours, nemo = _both(model, _encoded(frames, seed), length)
        assert ours == nemo, (frames, length)
        emitted += len(ours)
    assert emitted > 0


def test_length_zero_and_one_frame():
    model = _model(seed=1)
    assert tdt_greedy.greedy_tdt(model, _encoded(5), 0) == []
    ours, nemo = _both(model, _encoded(1, 3), 1)
    assert ours == nemo


def test_length_beyond_the_frames_is_clamped():
    model = _model(seed=2)
    encoded = _encoded(6, 4)
    assert tdt_greedy.greedy_tdt(model, encoded, 60) == tdt_greedy.greedy_tdt(model, encoded, 6)


def test_all_blank_gives_nothing():
    model = _model(blank_bias=100.0)
    ours, nemo = _both(model, _encoded(25), 25)
    assert ours == nemo == []


@pytest.mark.parametrize("max_symbols", [1, 3, 10])
def test_max_symbols_cap(max_symbols):
    """No blank, duration 0 on every step: each frame emits exactly max_symbols tokens, then
    time is forced on by one frame."""
    model = _model(blank_bias=-100.0, duration0_bias=100.0, max_symbols=max_symbols)
    assert tdt_greedy.params_of(model).max_symbols == max_symbols
    ours, nemo = _both(model, _encoded(9), 9)
    assert ours == nemo
    assert len(ours) == 9 * max_symbols


def test_tokens_on_every_frame_with_long_durations():
    """No blank, duration 4 preferred: a token every fourth frame, the last one overshooting."""
    model = _model(blank_bias=-100.0)
    with torch.no_grad():
        model.joint.joint_net[-1].bias[VOCAB + 1 + 4] += 100.0  # duration 4
    ours, nemo = _both(model, _encoded(10), 10)
    assert ours == nemo
    assert len(ours) == 3  # frames 0, 4, 8


def test_text_is_nemos_text():
    model = _model(seed=5, blank_bias=-1.0)
    encoded = _encoded(30, 5)
    with torch.inference_mode():
        want = model.decoding.rnnt_decoder_predictions_tensor(
            encoder_output=encoded, encoded_lengths=torch.tensor([30]))[0].text
    assert want
    assert tdt_greedy.greedy_tdt_text(model, encoded, 30) == want


def test_refuses_what_it_does_not_reproduce():
    assert "greedy_batch" in tdt_greedy.supports(_model(strategy="greedy"))
    model = _model()
    with pytest.raises(ValueError):
        tdt_greedy.greedy_tdt(model, torch.zeros((2, HIDDEN, 4)), 4)
