#!/usr/bin/env python
"""Build tiny random-weight NeMo ASR models of every family, offline, for the test suite.

Each family is built from a hand-written config dict (nothing is downloaded), with fixed seeds,
and saved with ``save_to`` as ``OUT_DIR/<family>.nemo`` (about 1-2 MB each):

========  ====================================================================================
tdt       ``EncDecRNNTBPEModel``, TDT loss and decoding, durations [0, 1, 2, 3, 4] (the joint has
          ``num_extra_outputs = len(durations)``), as Parakeet-TDT is shaped
rnnt      ``EncDecRNNTBPEModel``, plain RNNT
ctc       ``EncDecCTCModelBPE`` with a ``ConvASRDecoder``
ctc_char  ``EncDecCTCModel`` with a character label list
canary    ``EncDecMultiTaskModel`` (AED, prompt format ``canary``) with an aggregate
          ``CanaryTokenizer``: special tokens plus one BPE tokenizer each for ``en`` and ``de``
========  ====================================================================================

All share a FastConformer encoder (``ConformerEncoder``, ``dw_striding`` subsampling by 8) and
an ``AudioToMelSpectrogramPreprocessor`` at 16 kHz. SentencePiece BPE tokenizers are trained
on a small corpus drawn from ``scripts/data/words.txt``. The weights are random, so the text
these models produce is garbage; they exist to exercise loading, the transcription paths and
the worker plumbing quickly.

Usage::

    .venv/bin/python scripts/build_test_models.py OUT_DIR [--family F ...] [--force]

The module has no side effects at import and imports NeMo/torch only inside functions, so the
test suite can load it by path and call :func:`build_test_models`.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import random
import sys
import tempfile
import time
import uuid
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

FAMILIES = ("tdt", "rnnt", "ctc", "ctc_char", "canary")

WORDS_FILE = Path(__file__).resolve().parent / "data" / "words.txt"
SAMPLE_RATE = 16000
N_MELS = 64
D_MODEL = 64
N_LAYERS = 2
PRED_HIDDEN = 64
TDT_DURATIONS = [0, 1, 2, 3, 4]
BPE_VOCAB = 128
CANARY_LANGS = ("en", "de")
CANARY_BPE_VOCAB = 64
CHAR_LABELS = [" ", *"abcdefghijklmnopqrstuvwxyz", "'"]
SEED = 1234


# --------------------------------------------------------------------------- tokenizers
def _corpus(seed: int, n_sentences: int = 2000) -> list[str]:
    """Sentences of 3-12 words from the bundled word list, reproducible from ``seed``."""
    words = [w.strip().lower() for w in WORDS_FILE.read_text(encoding="utf-8").split()]
    words = [w for w in words if w]
    rng = random.Random(seed)
    return [" ".join(rng.choice(words) for _ in range(rng.randint(3, 12)))
            for _ in range(n_sentences)]


def _strip_trainer_paths(model_file: Path) -> None:
    """Drop the (temporary) corpus path and model prefix SentencePiece records in the model.

    They are unused at inference and would make every build's tokenizer bytes differ.
    """
    from sentencepiece import sentencepiece_model_pb2

    proto = sentencepiece_model_pb2.ModelProto()
    proto.ParseFromString(model_file.read_bytes())
    del proto.trainer_spec.input[:]
    proto.trainer_spec.model_prefix = ""
    model_file.write_bytes(proto.SerializeToString())


def _train_bpe(out_dir: Path, vocab_size: int, seed: int) -> Path:
    """Train a SentencePiece BPE tokenizer into ``out_dir`` (the layout NeMo's ``bpe`` expects).

    Paths are absolute and training is single-threaded without shuffling, so the result does not
    depend on the current directory and is the same on every run.
    """
    import sentencepiece as spm

    out_dir.mkdir(parents=True, exist_ok=True)
    corpus = out_dir / "text.txt"
    corpus.write_text("\n".join(_corpus(seed)) + "\n", encoding="utf-8")
    spm.SentencePieceTrainer.train(
        input=str(corpus), model_prefix=str(out_dir / "tokenizer"), vocab_size=vocab_size,
        model_type="bpe", character_coverage=1.0, bos_id=-1, eos_id=-1, unk_id=0,
        num_threads=1, minloglevel=2, input_sentence_size=0, shuffle_input_sentence=False)
    _strip_trainer_paths(out_dir / "tokenizer.model")
    sp = spm.SentencePieceProcessor(model_file=str(out_dir / "tokenizer.model"))
    # NeMo registers vocab.txt as an artifact: it must exist.
    (out_dir / "vocab.txt").write_text(
        "".join(sp.id_to_piece(i) + "\n" for i in range(sp.get_piece_size())), encoding="utf-8")
    return out_dir


def _train_special(out_dir: Path, langs: Iterable[str]) -> Path:
    """The Canary special-token tokenizer (BOS/EOS/PAD, task, pnc and language tokens).

    ``build_special_tokenizer`` is called without ``force_rebuild``: with it, NeMo deletes
    ``tokenizer.model``/``vocab.txt``/... relative to the CURRENT directory. ``out_dir`` is fresh,
    so nothing needs rebuilding.
    """
    from nemo.collections.common.tokenizers.canary_tokenizer import CanaryTokenizer

    cwd = os.getcwd()
    try:
        CanaryTokenizer.build_special_tokenizer(["translate", "transcribe", *langs], out_dir)
    finally:
        os.chdir(cwd)
    _strip_trainer_paths(out_dir / "tokenizer.model")
    return out_dir


# --------------------------------------------------------------------------- configs
def _preprocessor() -> dict[str, Any]:
    return {
        "_target_": "nemo.collections.asr.modules.AudioToMelSpectrogramPreprocessor",
        "sample_rate": SAMPLE_RATE, "normalize": "per_feature", "window_size": 0.025,
        "window_stride": 0.01, "window": "hann", "features": N_MELS, "n_fft": 512, "log": True,
        "frame_splicing": 1, "dither": 1e-5, "pad_to": 0, "pad_value": 0.0,
    }


def _spec_augment() -> dict[str, Any]:
    return {"_target_": "nemo.collections.asr.modules.SpectrogramAugmentation",
            "freq_masks": 2, "time_masks": 2, "freq_width": 15, "time_width": 0.05}


def _encoder() -> dict[str, Any]:
    """FastConformer: Conformer blocks behind 8x depthwise-separable striding."""
    return {
        "_target_": "nemo.collections.asr.modules.ConformerEncoder",
        "feat_in": N_MELS, "feat_out": -1, "n_layers": N_LAYERS, "d_model": D_MODEL,
        "subsampling": "dw_striding", "subsampling_factor": 8, "subsampling_conv_channels": 32,
        "causal_downsampling": False, "ff_expansion_factor": 4, "self_attention_model": "rel_pos",
        "n_heads": 2, "att_context_size": [-1, -1], "xscaling": True, "untie_biases": True,
        "pos_emb_max_len": 5000, "conv_kernel_size": 9, "conv_norm_type": "batch_norm",
        "dropout": 0.1, "dropout_pre_encoder": 0.1, "dropout_emb": 0.0, "dropout_att": 0.1,
    }


def _base(tokenizer: dict[str, Any] | None) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "sample_rate": SAMPLE_RATE,
        "preprocessor": _preprocessor(),
        "spec_augment": _spec_augment(),
        "encoder": _encoder(),
        "optim": {"name": "adamw", "lr": 1e-3},
    }
    if tokenizer is not None:
        cfg["tokenizer"] = tokenizer
    return cfg


def _transducer_cfg(tok_dir: Path, tdt: bool) -> dict[str, Any]:
    cfg = _base({"dir": str(tok_dir), "type": "bpe"})
    extra = len(TDT_DURATIONS) if tdt else 0
    # The RNNT models read model_defaults.enc_hidden when they set up the joint.
    cfg["model_defaults"] = {"enc_hidden": D_MODEL, "pred_hidden": PRED_HIDDEN,
                             "joint_hidden": PRED_HIDDEN}
    cfg["decoder"] = {
        "_target_": "nemo.collections.asr.modules.RNNTDecoder",
        "normalization_mode": None, "random_state_sampling": False, "blank_as_pad": True,
        "prednet": {"pred_hidden": PRED_HIDDEN, "pred_rnn_layers": 1, "t_max": None,
                    "dropout": 0.1},
    }
    cfg["joint"] = {
        "_target_": "nemo.collections.asr.modules.RNNTJoint",
        "log_softmax": None, "preserve_memory": False, "fuse_loss_wer": False,
        "fused_batch_size": 4, "num_extra_outputs": extra,
        "jointnet": {"joint_hidden": PRED_HIDDEN, "activation": "relu", "dropout": 0.1,
                     "encoder_hidden": D_MODEL, "pred_hidden": PRED_HIDDEN},
    }
    if tdt:
        # As in the published Parakeet-TDT configs (the numba 'tdt' loss is only needed to train).
        cfg["model_defaults"].update(tdt_durations=TDT_DURATIONS,
                                     num_tdt_durations=len(TDT_DURATIONS))
        cfg["decoding"] = {"strategy": "greedy_batch", "model_type": "tdt",
                           "durations": TDT_DURATIONS, "greedy": {"max_symbols": 10}}
        cfg["loss"] = {"loss_name": "tdt",
                       "tdt_kwargs": {"fastemit_lambda": 0.0, "clamp": -1.0,
                                      "durations": TDT_DURATIONS, "sigma": 0.02, "omega": 0.0}}
    else:
        cfg["decoding"] = {"strategy": "greedy_batch", "greedy": {"max_symbols": 10}}
        cfg["loss"] = {"loss_name": "default",
                       "warprnnt_numba_kwargs": {"fastemit_lambda": 0.0, "clamp": -1.0}}
    return cfg


def _ctc_cfg(tok_dir: Path | None) -> dict[str, Any]:
    if tok_dir is None:
        cfg = _base(None)
        cfg["labels"] = list(CHAR_LABELS)
        vocabulary, num_classes = list(CHAR_LABELS), len(CHAR_LABELS)
    else:
        cfg = _base({"dir": str(tok_dir), "type": "bpe"})
        vocabulary, num_classes = [], -1  # filled in from the tokenizer by the BPE model
    cfg["decoder"] = {"_target_": "nemo.collections.asr.modules.ConvASRDecoder",
                      "feat_in": D_MODEL, "num_classes": num_classes, "vocabulary": vocabulary}
    cfg["decoding"] = {"strategy": "greedy_batch"}
    return cfg


def _canary_cfg(spl_dir: Path, lang_dirs: dict[str, Path]) -> dict[str, Any]:
    langs = {"spl_tokens": {"dir": str(spl_dir), "type": "bpe"}}
    langs.update({lang: {"dir": str(d), "type": "bpe"} for lang, d in lang_dirs.items()})
    cfg = _base({
        "dir": None, "type": "agg", "langs": langs,
        "custom_tokenizer": {
            "_target_": "nemo.collections.common.tokenizers.canary_tokenizer.CanaryTokenizer",
            "tokenizer": None},
    })
    cfg.update({
        "prompt_format": "canary",
        # Slots a transcribe() call leaves out are filled from these; without them every call
        # must name all four (task included) or the prompt formatter asserts.
        "prompt_defaults": [{"role": "user", "slots": {
            "source_lang": "en", "target_lang": "en", "task": "asr", "pnc": "yes"}}],
        "label_smoothing": 0.0,
        # <|startoftranscript|> source_lang task target_lang pnc
        "context_len_for_AR_decoding": 5,
        "model_defaults": {"asr_enc_hidden": D_MODEL, "lm_enc_hidden": D_MODEL,
                           "lm_dec_hidden": D_MODEL},
        "transf_encoder": {
            "_target_": "nemo.collections.asr.modules.transformer.transformer_encoders."
                        "TransformerEncoder",
            "num_layers": 0, "hidden_size": D_MODEL, "inner_size": 4 * D_MODEL,
            "num_attention_heads": 2, "ffn_dropout": 0.1, "attn_score_dropout": 0.1,
            "attn_layer_dropout": 0.1, "mask_future": False, "pre_ln": True,
            "pre_ln_final_layer_norm": True},
        "transf_decoder": {
            "_target_": "nemo.collections.asr.modules.transformer.get_nemo_transformer",
            "model_name": None, "pretrained": False, "encoder": None,
            "pre_ln_final_layer_norm": True,
            "config_dict": {
                "max_sequence_length": 512, "num_token_types": 0, "embedding_dropout": 0.1,
                "learn_positional_encodings": False, "hidden_size": D_MODEL,
                "inner_size": 2 * D_MODEL, "num_layers": 1, "num_attention_heads": 2,
                "ffn_dropout": 0.1, "attn_score_dropout": 0.1, "attn_layer_dropout": 0.1,
                "hidden_act": "relu", "pre_ln": True, "vocab_size": None}},
        "head": {
            "_target_": "nemo.collections.asr.parts.submodules.token_classifier.TokenClassifier",
            "num_layers": 1, "activation": "relu", "log_softmax": True, "hidden_size": D_MODEL,
            "num_classes": None, "dropout": 0.0, "use_transformer_init": True},
        "decoding": {"strategy": "beam", "return_best_hypothesis": True,
                     "beam": {"beam_size": 1, "len_pen": 0.0, "max_generation_delta": 20}},
        "loss": {"_target_": "nemo.collections.common.losses.smoothed_cross_entropy."
                             "SmoothedCrossEntropyLoss",
                 "label_smoothing": 0.0, "pad_id": None},
    })
    return cfg


# --------------------------------------------------------------------------- building
def _family_seed(family: str) -> int:
    # Per family, so building a subset gives the same weights as building all of them.
    return SEED + zlib.crc32(family.encode())


def _make_model(family: str, work: Path):
    """Construct one family's model (random weights) with tokenizers trained under ``work``."""
    from omegaconf import OmegaConf

    from nemo.collections.asr import models

    seed = _family_seed(family)
    if family in ("tdt", "rnnt"):
        cls = models.EncDecRNNTBPEModel
        cfg = _transducer_cfg(_train_bpe(work / "tok", BPE_VOCAB, seed), tdt=family == "tdt")
    elif family == "ctc":
        cls, cfg = models.EncDecCTCModelBPE, _ctc_cfg(_train_bpe(work / "tok", BPE_VOCAB, seed))
    elif family == "ctc_char":
        cls, cfg = models.EncDecCTCModel, _ctc_cfg(None)
    elif family == "canary":
        spl = _train_special(work / "spl_tokens", CANARY_LANGS)
        lang_dirs = {lang: _train_bpe(work / lang, CANARY_BPE_VOCAB, seed + i)
                     for i, lang in enumerate(CANARY_LANGS)}
        cls, cfg = models.EncDecMultiTaskModel, _canary_cfg(spl, lang_dirs)
    else:
        raise ValueError(f"unknown family {family!r}; expected one of {', '.join(FAMILIES)}")

    import torch

    torch.manual_seed(seed)
    model = cls(cfg=OmegaConf.create(cfg), trainer=None)
    return model.eval()


@contextlib.contextmanager
def _quiet_nemo() -> Iterator[None]:
    """Keep NeMo to errors while building (imports NeMo); restore the caller's level after."""
    from nemo.utils import logging as nemo_logging

    level = nemo_logging.get_verbosity()
    nemo_logging.set_verbosity(nemo_logging.ERROR)
    try:
        yield
    finally:
        nemo_logging.set_verbosity(level)


def _build_one(family: str, path: Path) -> int:
    """Build ``family`` and write it atomically to ``path``; return the parameter count."""
    with tempfile.TemporaryDirectory(prefix=f"build-{family}-") as tmp:
        cwd = os.getcwd()
        try:
            model = _make_model(family, Path(tmp))
            n_params = sum(p.numel() for p in model.parameters())
            # save_to only writes a tar named by us: write it next to the target, then rename,
            # so a reader never sees a half-written .nemo.
            tmp_name = path.with_name(f".{family}.{os.getpid()}.{uuid.uuid4().hex[:8]}.part")
            try:
                model.save_to(tmp_name)
                os.replace(tmp_name, path)
            except BaseException:
                tmp_name.unlink(missing_ok=True)
                raise
        finally:
            os.chdir(cwd)
    return n_params


def build_test_models(out_dir: Path, families: Iterable[str] = FAMILIES,
                      force: bool = False) -> dict[str, Path]:
    """Build ``out_dir/<family>.nemo`` for each family; return ``{family: path}``.

    A model that already exists is kept unless ``force``. Unknown families raise ``ValueError``
    before anything is built.
    """
    families = list(dict.fromkeys(families))
    unknown = [f for f in families if f not in FAMILIES]
    if unknown:
        raise ValueError(f"unknown families {unknown}; expected some of {', '.join(FAMILIES)}")
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {f: out_dir / f"{f}.nemo" for f in families}
    todo = [f for f in families if force or not paths[f].is_file()]
    if todo:
        with _quiet_nemo():
            for family in todo:
                _build_one(family, paths[family])
    return paths


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--family", action="append", choices=FAMILIES,
                    help="build only this family (repeatable); default: all")
    ap.add_argument("--force", action="store_true", help="rebuild models that already exist")
    a = ap.parse_args(argv)
    families = list(dict.fromkeys(a.family or FAMILIES))
    out_dir = a.out_dir.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    total = time.perf_counter()
    todo = []
    for family in families:
        path = out_dir / f"{family}.nemo"
        if path.is_file() and not a.force:
            print(f"{family:9s} exists          {path.stat().st_size / 1e6:5.2f} MB  {path}")
        else:
            todo.append((family, path))
    if todo:
        with _quiet_nemo():  # imports NeMo (~8 s): only when something is to be built
            for family, path in todo:
                t0 = time.perf_counter()
                n_params = _build_one(family, path)
                print(f"{family:9s} {n_params:8,d} params  {path.stat().st_size / 1e6:5.2f} MB  "
                      f"{time.perf_counter() - t0:5.1f} s  {path}", flush=True)
    print(f"total {time.perf_counter() - total:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
