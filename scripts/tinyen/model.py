"""tiny-en's tokenizer and NeMo configuration: a cache-aware streaming FastConformer with a TDT
head (decoded like Parakeet TDT) and an auxiliary CTC head, NeMo's hybrid TDT-CTC model.

The encoder is cache-aware (as NVIDIA's streaming FastConformers are): causal convolutions and
downsampling, attention limited to 70 frames on the left and a few on the right, trained with
several right contexts so the same weights serve a whole file and 160/560/1120 ms chunks
through ``conformer_stream_step``. The preprocessor does not normalise: a whole-clip
normalisation cannot be reproduced while the clip is still being spoken, and NeMo's fixed
normalisation (``fixed_mean``/``fixed_std``) only works for a batch of one in NeMo 3.0.
"""
from __future__ import annotations

import os
from pathlib import Path

from tinyen.speech import SR

DURATIONS = [0, 1, 2, 3, 4]
#: right contexts in encoder frames (80 ms each): chunks of 1120, 560 and 160 ms. The first is
#: the default (whole-file) context. 0 is left out: its streaming output drifts from offline
#: (../shared/notes/nemo.md). 70 left frames, divisible by (right + 1) as chunked_limited needs.
ATT_CONTEXTS = [[70, 13], [70, 6], [70, 1]]
CHUNK_MS = {13: 1120, 6: 560, 1: 160}


def train_tokenizer(sentences: list[str], out_dir: Path, vocab_size: int) -> Path:
    import sentencepiece as spm

    out_dir.mkdir(parents=True, exist_ok=True)
    corpus = out_dir / "text.txt"
    corpus.write_text("\n".join(sentences) + "\n", encoding="utf-8")
    spm.SentencePieceTrainer.train(
        input=str(corpus), model_prefix=str(out_dir / "tokenizer"), vocab_size=vocab_size,
        model_type="bpe", character_coverage=1.0, bos_id=-1, eos_id=-1, unk_id=0,
        num_threads=1, minloglevel=2, input_sentence_size=0, shuffle_input_sentence=False,
        # a smoke run's few sentences cannot fill 1024 pieces: fewer, instead of an error
        hard_vocab_limit=False)
    with open(out_dir / "vocab.txt", "w", encoding="utf-8") as f:
        sp = spm.SentencePieceProcessor(model_file=str(out_dir / "tokenizer.model"))
        for i in range(sp.get_piece_size()):
            f.write(sp.id_to_piece(i) + "\n")
    return out_dir


def model_config(tokenizer_dir: Path, d_model: int = 256, n_layers: int = 2, n_heads: int = 8,
                 conv_channels: int = 64, pred_hidden: int = 160, ctc_weight: float = 0.3,
                 streaming: bool = True) -> dict:
    """The NeMo config of a hybrid TDT-CTC FastConformer (8x dw_striding subsampling).

    ``conv_channels`` is the subsampling front-end's width: it runs at the full 10 ms frame
    rate, so on a CPU it dominates the step while adding little accuracy (tiny-en v1: 144
    channels 6.7 s/step, 64 channels 4.4 s/step at batch 32 of padded 13 s)."""
    encoder = {
        "_target_": "nemo.collections.asr.modules.ConformerEncoder",
        "feat_in": 80, "feat_out": -1, "n_layers": n_layers, "d_model": d_model,
        "subsampling": "dw_striding", "subsampling_factor": 8,
        "subsampling_conv_channels": conv_channels, "ff_expansion_factor": 4,
        "self_attention_model": "rel_pos", "n_heads": n_heads, "xscaling": True,
        "untie_biases": True, "pos_emb_max_len": 5000, "conv_kernel_size": 9,
        "dropout": 0.1, "dropout_pre_encoder": 0.1, "dropout_emb": 0.0, "dropout_att": 0.1,
    }
    if streaming:
        encoder.update({"causal_downsampling": True, "att_context_style": "chunked_limited",
                        "att_context_size": ATT_CONTEXTS, "conv_context_size": "causal",
                        "conv_norm_type": "layer_norm"})
    else:
        encoder.update({"causal_downsampling": False, "att_context_size": [-1, -1],
                        "conv_norm_type": "batch_norm"})
    return {
        "sample_rate": SR,
        "tokenizer": {"dir": str(tokenizer_dir), "type": "bpe"},
        "preprocessor": {
            "_target_": "nemo.collections.asr.modules.AudioToMelSpectrogramPreprocessor",
            "sample_rate": SR, "normalize": "NA" if streaming else "per_feature",
            "window_size": 0.025, "window_stride": 0.01, "window": "hann", "features": 80,
            "n_fft": 512, "log": True, "frame_splicing": 1, "dither": 1e-5, "pad_to": 0,
            "pad_value": 0.0,
        },
        "spec_augment": {
            "_target_": "nemo.collections.asr.modules.SpectrogramAugmentation",
            "freq_masks": 2, "time_masks": 1, "freq_width": 10, "time_width": 0.05,
        },
        "encoder": encoder,
        "model_defaults": {"enc_hidden": d_model, "pred_hidden": pred_hidden,
                           "joint_hidden": pred_hidden, "tdt_durations": DURATIONS,
                           "num_tdt_durations": len(DURATIONS)},
        "decoder": {"_target_": "nemo.collections.asr.modules.RNNTDecoder",
                    "normalization_mode": None, "random_state_sampling": False,
                    "blank_as_pad": True,
                    "prednet": {"pred_hidden": pred_hidden, "pred_rnn_layers": 1, "t_max": None,
                                "dropout": 0.1}},
        "joint": {"_target_": "nemo.collections.asr.modules.RNNTJoint", "log_softmax": None,
                  "preserve_memory": False, "fuse_loss_wer": False, "fused_batch_size": 4,
                  "num_extra_outputs": len(DURATIONS),
                  "jointnet": {"joint_hidden": pred_hidden, "activation": "relu", "dropout": 0.1,
                               "encoder_hidden": d_model, "pred_hidden": pred_hidden}},
        "decoding": {"strategy": "greedy_batch", "model_type": "tdt", "durations": DURATIONS,
                     "greedy": {"max_symbols": 10}},
        # NeMo's own TDT loss (numba) refuses a CPU; it is only instantiated here, never run:
        # training uses tinyen.tdt_loss with the same durations and sigma
        "loss": {"loss_name": "tdt", "tdt_kwargs": {"durations": DURATIONS, "sigma": 0.02,
                                                    "omega": 0.0}},
        "aux_ctc": {"ctc_loss_weight": ctc_weight, "use_cer": False, "ctc_reduction": "mean_batch",
                    "decoder": {"_target_": "nemo.collections.asr.modules.ConvASRDecoder",
                                "feat_in": d_model, "num_classes": -1, "vocabulary": []},
                    "decoding": {"strategy": "greedy_batch"}},
        "optim": {"name": "adamw", "lr": 1e-3},
    }


def quiet_nemo() -> None:
    from nemo.utils import logging as nemo_logging

    nemo_logging.set_verbosity(nemo_logging.ERROR)


def build_model(cfg: dict):
    quiet_nemo()
    from nemo.collections.asr.models import EncDecHybridRNNTCTCBPEModel
    from omegaconf import OmegaConf

    return EncDecHybridRNNTCTCBPEModel(cfg=OmegaConf.create(cfg), trainer=None)


def scale_residual_branches(model, scale: float) -> None:
    """Multiply the last projection of every residual branch of the encoder (both
    feed-forwards, attention's output, the convolution's last pointwise) by ``scale``.

    With a small ``scale`` a deep encoder starts close to the identity (each layer ends in a
    layer norm of its residual stream), so the CTC head first sees the subsampled features
    themselves and the layers join in as they learn, as in Fixup/ReZero-style inits. With
    NeMo's default init, seven layers of random attention over the whole context blur the
    frames the head must align, and CTC sits on its blank plateau."""
    import torch

    with torch.no_grad():
        for layer in model.encoder.layers:
            for lin in (layer.feed_forward1.linear2, layer.feed_forward2.linear2,
                        layer.self_attn.linear_out, layer.conv.pointwise_conv2):
                lin.weight.mul_(scale)
                if lin.bias is not None:
                    lin.bias.mul_(scale)


def load_weights(model, nemo_path: Path) -> dict:
    """Copy a saved tiny-en's weights into ``model``, which must have its architecture and
    tokenizer (the tokenizer is trained deterministically on the same sentences, but a vocab
    that differs would silently scramble every label, so it is compared). Returns where the
    weights came from, for the report."""
    import hashlib

    from nemo.collections.asr.models import ASRModel

    cwd = os.getcwd()
    try:  # NeMo's restore can leave the process in its temporary directory
        saved = ASRModel.restore_from(str(nemo_path), map_location="cpu")
    finally:
        os.chdir(cwd)
    ours, theirs = model.tokenizer, saved.tokenizer
    if [ours.ids_to_tokens([i]) for i in range(ours.vocab_size)] != \
            [theirs.ids_to_tokens([i]) for i in range(theirs.vocab_size)]:
        raise SystemExit(f"{nemo_path}: its tokenizer differs from this run's; "
                         "train with the settings it was trained with")
    model.load_state_dict(saved.state_dict())
    digest = hashlib.sha256(Path(nemo_path).read_bytes()).hexdigest()
    return {"path": str(nemo_path), "sha256": digest}


def count_params(model) -> int:
    return sum(p.numel() for p in model.parameters())
