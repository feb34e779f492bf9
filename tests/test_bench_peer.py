"""scripts/bench_peer.py's pure parts: the files it writes for onnx-asr and how it prints ratios.
No NeMo, no network, no venv."""
from __future__ import annotations

import pytest

from tests.conftest import load_script

bench = load_script("bench_peer")


class FakeTokenizer:
    """The two members of NeMo's SentencePieceTokenizer that vocab_text reads."""

    def __init__(self, pieces: list[str]):
        self.pieces = pieces
        self.vocab_size = len(pieces)

    def ids_to_tokens(self, ids):
        return [self.pieces[i] for i in ids]


def _cfg(durations=(0, 1, 2, 3, 4)) -> dict:
    return {"preprocessor": {"features": 128, "normalize": "per_feature"},
            "encoder": {"subsampling_factor": 8, "d_model": 1024},
            "decoding": {"strategy": "greedy_batch", "model_type": "tdt", "durations": list(durations),
                         "greedy": {"max_symbols": 10}}}


def test_vocab_has_one_line_per_piece_and_the_blank_last():
    text = bench.vocab_text(FakeTokenizer(["<unk>", "\u2581t", "he", "\u2581s"]))
    assert text == "<unk> 0\n\u2581t 1\nhe 2\n\u2581s 3\n<blk> 4\n"
    # read back the way onnx-asr does: id -> token
    vocab = {int(i): tok for tok, i in (line.split(" ") for line in text.splitlines())}
    assert vocab[4] == "<blk>" and len(vocab) == 5


def test_vocab_refuses_a_piece_with_a_space():
    with pytest.raises(ValueError):
        bench.vocab_text(FakeTokenizer(["a b"]))


def test_config_json_content():
    assert bench.peer_config(_cfg()) == {"model_type": "nemo-conformer-tdt", "features_size": 128,
                                         "subsampling_factor": 8, "max_tokens_per_step": 10}


def test_config_refuses_durations_onnx_asr_would_misread():
    with pytest.raises(ValueError, match="durations"):
        bench.peer_config(_cfg(durations=(0, 2, 4)))


def test_verdict():
    assert bench.verdict(0.79, 0.8) == "<= 0.80 ok"
    assert bench.verdict(0.8, 0.8) == "<= 0.80 ok"
    assert bench.verdict(1.25, 0.8) == "<= 0.80 MISSED"
    assert bench.verdict(3.0, None) == ""


def test_row_shows_medians_both_ratios_and_the_target():
    row = bench.format_row("transcribe 5 s (ms)", [0.439, 0.715, 0.352], 0.8, 1e3)
    assert row.split() == ["transcribe", "5", "s", "(ms)", "439.0", "715.0", "352.0", "0.61", "1.25",
                           "<=", "0.80", "MISSED"]
    assert bench.format_row("  encoder 5 s (ms)", [0.2, 0.4, 0.2], None, 1e3).endswith("0.50     1.00")
    gib = 2**30
    rss = bench.format_row("peak RSS at ready (GiB)", [2.13 * gib, 1.4 * gib, 1.0 * gib], 1.0, 1 / gib, "9.2f")
    assert rss.split()[-6:] == ["1.00", "1.52", "2.13", "<=", "1.00", "MISSED"]
    # the columns line up with the header's
    assert len(row.split("MISSED")[0].rstrip()) == len(rss.split("MISSED")[0].rstrip())


def test_sha256_of(tmp_path):
    f = tmp_path / "m.nemo"
    f.write_bytes(b"abc")
    assert bench.sha256_of(f) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
