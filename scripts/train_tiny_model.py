#!/usr/bin/env python
"""Train ``tiny-en``: a small, real English FastConformer model on synthetic espeak-ng speech.

The whole job runs from a fresh clone with the project's own dependencies plus the
``espeak-ng`` and ``sox`` system packages, on a CPU, deterministically (everything is seeded):

1. sentences of 3-12 words are drawn from ``scripts/data/words.txt``; the held-out sentences and
   the bundled sample sentence are drawn first and excluded from training (checked);
2. espeak-ng speaks them (voices en-us, en-gb, en-gb-x-rp, en-gb-scotland, en-029; rate 140-190
   wpm; pitch 30-70) into 22.05 kHz WAV on stdout, resampled to 16 kHz mono with soxr, with a
   multiprocessing pool. A few training items are 2-3 sentences joined with 0.3-1.2 s silences so
   that the model also sees pauses inside an utterance;
3. a SentencePiece BPE tokenizer is trained on the training sentences only;
4. a FastConformer (8x dw_striding subsampling) with a CTC head is trained with a plain PyTorch
   loop over length-bucketed in-memory batches (no WAV files, no dataloader workers: on two
   cores the padding saved by bucketing is worth more than anything Lightning adds);
5. the model is evaluated with greedy decoding on in-memory arrays: held-out sentences (same
   voices, rates, pitches) and a few 20-60 s multi-sentence utterances with pauses, each
   transcribed in ONE forward pass; dropped words at the start / middle / end are reported;
6. it is saved with ``save_to`` to ``models/data/tiny-en.nemo`` and the numbers go to
   ``models/data/tiny-en.json``.

Why CTC and not TDT (measured on this 2-core CPU, torch 2.13 CPU build, NeMo 3.0.0, same
3.3M-parameter encoder, BPE 256, 8x subsampling; ``--measure`` repeats the CTC/TDT comparison):

* the default numba TDT loss refuses CPU ("TDT is not yet implemented for non CUDA computation");
* the numba RNNT loss runs, but ~25x slower per step than CTC (shared notes: ~12 s/step);
* NeMo's pure-PyTorch ``tdt_pytorch`` loss cannot run on a CPU-only torch at all: it hard-codes
  ``log_alpha.cuda()``. With ``.cuda()`` patched to a no-op, it is a scalar Python triple loop
  over (batch, t, u) with autograd on every cell: ONE batch-4 step did not finish in 6 minutes,
  where a CTC step of the same batch took 0.21 s (1.0-1.1 s/step at batch 32, length-bucketed).

So a transducer gets no practical number of updates in a two-hour CPU budget; the bundled
model is CTC (``EncDecCTCModelBPE``), recorded as ``family: ctc`` in ``tiny-en.json``.

Usage::

    .venv/bin/python scripts/train_tiny_model.py                 # the full run (measured: data 146 s + training 68 min on 2 cores)
    .venv/bin/python scripts/train_tiny_model.py --make-sample   # only models/data/sample-en.{wav,txt}
    .venv/bin/python scripts/train_tiny_model.py --utterances 200 --heldout 40 --epochs 1 \\
        --out /tmp/t.nemo --workdir /tmp/tw                      # smoke run

The module has no side effects at import; NeMo and torch are imported inside functions, so the
test suite can import it by path and reuse its pieces.
"""
from __future__ import annotations

import argparse
import io
import json
import math
import multiprocessing
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
WORDS_FILE = Path(__file__).resolve().parent / "data" / "words.txt"
DEFAULT_OUT = REPO / "models" / "data" / "tiny-en.nemo"
SAMPLE_DIR = REPO / "models" / "data"  # installed with the package, next to tiny-en

SR = 16000
VOICES = ("en-us", "en-gb", "en-gb-x-rp", "en-gb-scotland", "en-029")
RATE_RANGE = (140, 190)
PITCH_RANGE = (30, 70)
WORDS_RANGE = (3, 12)
SAMPLE_SPEC = {"voice": "en-us", "rate": 160, "pitch": 50}
SEED = 1234

# Model / training defaults (the full run)
DEFAULTS = dict(
    utterances=14000,
    heldout=400,
    long_utterances=4,
    epochs=10,
    batch_size=32,
    lr=2e-3,
    warmup=600,
    vocab_size=256,
    d_model=144,
    n_layers=6,
    n_heads=4,
    subsampling=8,
    conv_channels=64,
    multi_fraction=0.08,
)


# --------------------------------------------------------------------------- text and audio
def load_words(path: Path = WORDS_FILE) -> list[str]:
    words = [w.strip().lower() for w in path.read_text(encoding="utf-8").split()]
    return [w for w in words if w]


def normalize_text(text: str) -> str:
    """Lowercase letters, apostrophes and single spaces only."""
    out = []
    for ch in text.lower():
        out.append(ch if ("a" <= ch <= "z" or ch == "'") else " ")
    return " ".join("".join(out).split())


def random_sentence(rng: random.Random, words: list[str], lo: int = WORDS_RANGE[0],
                    hi: int = WORDS_RANGE[1]) -> str:
    return " ".join(rng.choice(words) for _ in range(rng.randint(lo, hi)))


def random_voice(rng: random.Random) -> dict:
    return {"voice": rng.choice(VOICES), "rate": rng.randint(*RATE_RANGE),
            "pitch": rng.randint(*PITCH_RANGE)}


def synth(text: str, voice: str = "en-us", rate: int = 160, pitch: int = 50) -> np.ndarray:
    """Speak ``text`` with espeak-ng; return 16 kHz mono float32 in [-1, 1]."""
    import soundfile as sf
    import soxr

    wav = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(rate), "-p", str(pitch), "--stdout", text],
        check=True, capture_output=True).stdout
    audio, sr = sf.read(io.BytesIO(wav), dtype="float32", always_2d=True)
    audio = audio.mean(axis=1)
    if sr != SR:
        audio = soxr.resample(audio, sr, SR, quality="HQ").astype(np.float32)
    return np.clip(audio, -1.0, 1.0)


def _synth_item(item: dict) -> np.ndarray:
    """Pool worker: one item = one or more sentences (same voice) joined by silences."""
    parts = []
    for i, text in enumerate(item["texts"]):
        if i:
            parts.append(np.zeros(int(item["gaps"][i - 1] * SR), dtype=np.float32))
        parts.append(synth(text, item["voice"], item["rate"], item["pitch"]))
    audio = np.concatenate(parts)
    return (audio * 32767.0).round().astype(np.int16)


def synthesize(items: list[dict], procs: int = 2) -> list[np.ndarray]:
    """Synthesize items (in order) with a pool of ``procs`` processes; int16 16 kHz arrays."""
    if procs <= 1:
        return [_synth_item(it) for it in items]
    with multiprocessing.get_context("fork").Pool(procs) as pool:
        return pool.map(_synth_item, items, chunksize=16)


def make_item(rng: random.Random, texts: list[str], gaps=None) -> dict:
    item = random_voice(rng)
    item["texts"] = texts
    item["gaps"] = list(gaps or [])
    item["text"] = " ".join(texts)
    return item


def sample_sentence(words: list[str] | None = None, seed: int = SEED) -> str:
    """The bundled sample's sentence: 8-10 words, reproducible, never used for training, and
    free of homophones (no model can tell "to" from "two" without context, and the demo and
    the exact-text tests must come out right)."""
    words = words or load_words()
    avoid = homophones(words)
    rng = random.Random(f"sample-{seed}")
    while True:
        text = random_sentence(rng, words, 8, 10)
        if not any(w in avoid for w in text.split()):
            return text


def make_sample(out_dir: Path = SAMPLE_DIR, seed: int = SEED) -> tuple[Path, Path]:
    """Write sample-en.wav (16 kHz mono PCM16) and sample-en.txt (the words) into ``out_dir``."""
    import soundfile as sf

    text = sample_sentence(seed=seed)
    audio = synth(text, **SAMPLE_SPEC)
    dur = len(audio) / SR
    if not 3.0 <= dur <= 6.0:
        raise RuntimeError(f"sample is {dur:.2f} s, expected 3-6 s")
    out_dir.mkdir(parents=True, exist_ok=True)
    wav, txt = out_dir / "sample-en.wav", out_dir / "sample-en.txt"
    sf.write(str(wav), audio, SR, subtype="PCM_16")
    txt.write_text(text + "\n", encoding="utf-8")
    return wav, txt


def build_datasets(n_train: int, n_heldout: int, n_long: int, seed: int = SEED,
                   multi_fraction: float = 0.08, words: list[str] | None = None):
    """Plan (no audio yet) the training items, the held-out items and the long utterances.

    Held-out sentences, long-utterance sentences and the sample sentence are drawn first and
    every training sentence that collides with one of them is redrawn.
    """
    words = words or load_words()
    rng = random.Random(seed)
    reserved = {sample_sentence(words, seed)}
    heldout = []
    while len(heldout) < n_heldout:
        s = random_sentence(rng, words)
        if s not in reserved:
            reserved.add(s)
            heldout.append(make_item(rng, [s]))
    long_items = []
    for _ in range(n_long):
        target = rng.uniform(25.0, 50.0)
        texts, gaps, est = [], [], 0.0
        while est < target:
            s = random_sentence(rng, words, 6, 12)
            if s in reserved:
                continue
            reserved.add(s)
            if texts:
                gaps.append(round(rng.uniform(0.4, 1.2), 3))
                est += gaps[-1]
            texts.append(s)
            est += len(s.split()) / 165 * 60 + 0.3
        long_items.append(make_item(rng, texts, gaps))
    train, seen = [], set()
    while len(train) < n_train:
        k = 1 if rng.random() >= multi_fraction else rng.randint(2, 3)
        texts = []
        while len(texts) < k:
            s = random_sentence(rng, words)
            if s not in reserved:
                texts.append(s)
                seen.add(s)
        gaps = [round(rng.uniform(0.3, 1.2), 3) for _ in range(k - 1)]
        train.append(make_item(rng, texts, gaps))
    leak = seen & reserved
    assert not leak, f"held-out sentences leaked into training: {sorted(leak)[:3]}"
    return train, heldout, long_items


# --------------------------------------------------------------------------- tokenizer + model
def train_tokenizer(sentences: list[str], out_dir: Path, vocab_size: int) -> Path:
    import sentencepiece as spm

    out_dir.mkdir(parents=True, exist_ok=True)
    corpus = out_dir / "text.txt"
    corpus.write_text("\n".join(sentences) + "\n", encoding="utf-8")
    spm.SentencePieceTrainer.train(
        input=str(corpus), model_prefix=str(out_dir / "tokenizer"), vocab_size=vocab_size,
        model_type="bpe", character_coverage=1.0, bos_id=-1, eos_id=-1, unk_id=0,
        num_threads=1, minloglevel=2, input_sentence_size=0, shuffle_input_sentence=False)
    with open(out_dir / "vocab.txt", "w", encoding="utf-8") as f:
        sp = spm.SentencePieceProcessor(model_file=str(out_dir / "tokenizer.model"))
        for i in range(sp.get_piece_size()):
            f.write(sp.id_to_piece(i) + "\n")
    return out_dir


def model_config(tokenizer_dir: Path, family: str = "ctc", d_model: int = 144, n_layers: int = 6,
                 n_heads: int = 4, subsampling: int = 8, pred_hidden: int = 128,
                 conv_channels: int = 64) -> dict:
    """NeMo config. ``conv_channels`` is the subsampling front-end's width: it runs at the full
    10 ms frame rate, so on a CPU it dominates the step (measured, batch 32 of padded 13 s:
    144 channels 6.7 s/step, 64 channels 4.4 s/step) while adding little accuracy."""
    cfg = {
        "sample_rate": SR,
        "tokenizer": {"dir": str(tokenizer_dir), "type": "bpe"},
        "preprocessor": {
            "_target_": "nemo.collections.asr.modules.AudioToMelSpectrogramPreprocessor",
            "sample_rate": SR, "normalize": "per_feature", "window_size": 0.025,
            "window_stride": 0.01, "window": "hann", "features": 80, "n_fft": 512, "log": True,
            "frame_splicing": 1, "dither": 1e-5, "pad_to": 0, "pad_value": 0.0,
        },
        "spec_augment": {
            "_target_": "nemo.collections.asr.modules.SpectrogramAugmentation",
            "freq_masks": 2, "time_masks": 1, "freq_width": 10, "time_width": 0.05,
        },
        "encoder": {
            "_target_": "nemo.collections.asr.modules.ConformerEncoder",
            "feat_in": 80, "feat_out": -1, "n_layers": n_layers, "d_model": d_model,
            "subsampling": "dw_striding", "subsampling_factor": subsampling,
            "subsampling_conv_channels": conv_channels, "causal_downsampling": False,
            "ff_expansion_factor": 4, "self_attention_model": "rel_pos", "n_heads": n_heads,
            "att_context_size": [-1, -1], "xscaling": True, "untie_biases": True,
            "pos_emb_max_len": 5000, "conv_kernel_size": 9, "conv_norm_type": "batch_norm",
            "dropout": 0.1, "dropout_pre_encoder": 0.1, "dropout_emb": 0.0, "dropout_att": 0.1,
        },
        "optim": {"name": "adamw", "lr": 1e-3},
    }
    if family == "ctc":
        cfg["decoder"] = {"_target_": "nemo.collections.asr.modules.ConvASRDecoder",
                          "feat_in": d_model, "num_classes": -1, "vocabulary": []}
        cfg["decoding"] = {"strategy": "greedy_batch"}
    elif family == "tdt":
        durations = [0, 1, 2, 3, 4]
        cfg["model_defaults"] = {"enc_hidden": d_model, "pred_hidden": pred_hidden,
                                 "joint_hidden": pred_hidden, "tdt_durations": durations,
                                 "num_tdt_durations": len(durations)}
        cfg["decoder"] = {"_target_": "nemo.collections.asr.modules.RNNTDecoder",
                          "normalization_mode": None, "random_state_sampling": False,
                          "blank_as_pad": True,
                          "prednet": {"pred_hidden": pred_hidden, "pred_rnn_layers": 1,
                                      "t_max": None, "dropout": 0.1}}
        cfg["joint"] = {"_target_": "nemo.collections.asr.modules.RNNTJoint",
                        "log_softmax": None, "preserve_memory": False, "fuse_loss_wer": False,
                        "fused_batch_size": 4, "num_extra_outputs": len(durations),
                        "jointnet": {"joint_hidden": pred_hidden, "activation": "relu",
                                     "dropout": 0.1, "encoder_hidden": d_model,
                                     "pred_hidden": pred_hidden}}
        cfg["decoding"] = {"strategy": "greedy_batch", "model_type": "tdt",
                           "durations": durations, "greedy": {"max_symbols": 10}}
        cfg["loss"] = {"loss_name": "tdt_pytorch",
                       "tdt_pytorch_kwargs": {"durations": durations, "sigma": 0.02}}
    else:
        raise ValueError(family)
    return cfg


def quiet_nemo() -> None:
    from nemo.utils import logging as nemo_logging

    nemo_logging.set_verbosity(nemo_logging.ERROR)


def build_model(cfg: dict):
    quiet_nemo()
    from omegaconf import OmegaConf

    if "joint" in cfg:
        from nemo.collections.asr.models import EncDecRNNTBPEModel as cls
    else:
        from nemo.collections.asr.models import EncDecCTCModelBPE as cls
    model = cls(cfg=OmegaConf.create(cfg), trainer=None)
    if "joint" in cfg:
        # NeMo only subtracts the duration outputs from the blank index for the numba 'tdt'
        # loss; the pure-PyTorch TDT loss needs blank = vocabulary size as well.
        from nemo.collections.asr.losses.rnnt_pytorch import TDTLossPytorch

        kw = cfg["loss"]["tdt_pytorch_kwargs"]
        model._tdt_loss = TDTLossPytorch(blank=model.tokenizer.vocab_size,
                                         durations=list(kw["durations"]), reduction="none",
                                         sigma=kw["sigma"])
    return model


def count_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


# --------------------------------------------------------------------------- training
def _pad_batch(audios: list[np.ndarray], targets: list[list[int]] | None = None):
    import torch

    lens = [len(a) for a in audios]
    x = torch.zeros(len(audios), max(lens))
    for i, a in enumerate(audios):
        x[i, :len(a)] = torch.from_numpy(a.astype(np.float32) / 32767.0 if a.dtype == np.int16
                                         else a)
    out = [x, torch.tensor(lens)]
    if targets is not None:
        tl = [len(t) for t in targets]
        y = torch.zeros(len(targets), max(tl), dtype=torch.long)
        for i, t in enumerate(targets):
            y[i, :len(t)] = torch.tensor(t)
        out += [y, torch.tensor(tl)]
    return out


def make_batches(lengths: list[int], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Length-bucketed batches (sorted by jittered length), in a shuffled order."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i] * rng.uniform(0.9, 1.1))
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    batches = [b for b in batches if len(b) == batch_size] or batches  # drop_last when possible
    rng.shuffle(batches)
    return batches


def compute_loss(model, x, xl, y, yl):
    log_or_enc = model.forward(input_signal=x, input_signal_length=xl)
    if hasattr(model, "joint"):
        enc, enc_len = log_or_enc
        dec, _, _ = model.decoder(targets=y, target_length=yl)
        joint = model.joint(encoder_outputs=enc, decoder_outputs=dec)
        losses = model._tdt_loss(acts=joint, labels=y, act_lens=enc_len, label_lens=yl)
        return (losses / yl.clamp(min=1)).mean()
    log_probs, enc_len, _ = log_or_enc
    return model.loss(log_probs=log_probs, targets=y, input_lengths=enc_len, target_lengths=yl)


def train_model(model, audios: list[np.ndarray], texts: list[str], epochs: int,
                batch_size: int = 32, lr: float = 2e-3, warmup: int = 600, seed: int = SEED,
                max_steps: int | None = None, log_every: int = 50, deadline: float | None = None,
                log=print, checkpoint: Path | None = None, checkpoint_key: str = "",
                on_epoch=None) -> dict:
    """Plain AdamW + warm-up/cosine loop. Returns {'losses': [...], 'steps': n, 'seconds': s}.

    With ``checkpoint``, the model, optimizer, step and elapsed time are saved there after every
    epoch, and a run that finds one resumes from it (a killed run loses at most one epoch).
    ``on_epoch(epoch)`` runs after each epoch (a quick held-out check).
    """
    import torch

    torch.manual_seed(seed)
    targets = [model.tokenizer.text_to_ids(t) for t in texts]
    lengths = [len(a) for a in audios]
    steps_per_epoch = len(make_batches(lengths, batch_size, random.Random(0)))
    total = steps_per_epoch * epochs if max_steps is None else max_steps
    warm = min(warmup, max(1, total // 10))
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.98), weight_decay=1e-3)

    budget = None if deadline is None else max(1.0, deadline - time.time())

    def progress(step):
        # fraction of the schedule done: by steps, or by time when a deadline binds first
        p = (step - warm) / max(1, total - warm)
        if budget is not None and step >= warm:
            p = max(p, (time.time() - t0 - warm_s) / max(1.0, budget - warm_s))
        return p

    def lr_at(step):
        if step < warm:
            return lr * (step + 1) / warm
        p = progress(step)
        return 1e-5 + (lr - 1e-5) * 0.5 * (1 + math.cos(math.pi * min(1.0, p)))

    model.train()
    losses, step, t0 = [], 0, time.time()
    warm_s = 0.0
    stopped_early = False
    first_epoch = 0
    state = None
    if checkpoint is not None and checkpoint.is_file():
        state = torch.load(checkpoint, map_location="cpu", weights_only=False)
        if state.get("key") != checkpoint_key:
            log(f"ignoring {checkpoint}: it is from a run with other settings")
            state = None
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        losses, step, first_epoch = state["losses"], state["step"], state["epoch"]
        warm_s, t0 = state["warm_s"], time.time() - state["elapsed"]
        if deadline is not None:
            budget = state.get("budget", budget)
        torch.set_rng_state(state["torch_rng"])
        log(f"resumed from {checkpoint}: epoch {first_epoch}, step {step}")
    for epoch in range(first_epoch, epochs if max_steps is None else 10**9):
        ep_losses = []
        rng = random.Random(f"{seed}-batches-{epoch}")
        for b in make_batches(lengths, batch_size, rng):
            for g in opt.param_groups:
                g["lr"] = lr_at(step)
            x, xl, y, yl = _pad_batch([audios[i] for i in b], [targets[i] for i in b])
            loss = compute_loss(model, x, xl, y, yl)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            losses.append(float(loss))
            ep_losses.append(float(loss))
            step += 1
            if step == warm:
                warm_s = time.time() - t0
            if log_every and step % log_every == 0:
                log(f"step {step}/{total} epoch {epoch + 1} loss {np.mean(losses[-log_every:]):.3f}"
                    f" lr {lr_at(step):.2e} {(time.time() - t0) / step:.3f} s/step")
            if step >= total or (deadline and step > warm and progress(step) >= 1.0):
                stopped_early = step < total
                break
        if ep_losses and log_every:
            log(f"epoch {epoch + 1} done: mean loss {np.mean(ep_losses):.3f}, "
                f"{time.time() - t0:.0f} s")
        if on_epoch is not None:
            on_epoch(epoch + 1)
            model.train()
        if checkpoint is not None:
            checkpoint.parent.mkdir(parents=True, exist_ok=True)
            tmp = checkpoint.with_suffix(".tmp")
            torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "losses": losses,
                        "step": step, "epoch": epoch + 1, "warm_s": warm_s,
                        "elapsed": time.time() - t0, "budget": budget,
                        "torch_rng": torch.get_rng_state(), "key": checkpoint_key}, tmp)
            os.replace(tmp, checkpoint)
        if step >= total or stopped_early:
            break
    model.eval()
    return {"losses": losses, "steps": step, "seconds": time.time() - t0,
            "stopped_early": stopped_early, "planned_steps": total}


# --------------------------------------------------------------------------- evaluation
def transcribe_arrays(model, audios: list[np.ndarray], batch_size: int = 16) -> list[str]:
    """Greedy decoding of in-memory 16 kHz arrays, whole utterance per forward pass."""
    import torch

    model.eval()
    order = sorted(range(len(audios)), key=lambda i: len(audios[i]))
    out = [""] * len(audios)
    with torch.inference_mode():
        for s in range(0, len(order), batch_size):
            idx = order[s:s + batch_size]
            x, xl = _pad_batch([audios[i] for i in idx])
            res = model.forward(input_signal=x, input_signal_length=xl)
            if hasattr(model, "joint"):
                enc, enc_len = res
                hyps = model.decoding.rnnt_decoder_predictions_tensor(
                    encoder_output=enc, encoded_lengths=enc_len)
            else:
                log_probs, enc_len, _ = res
                hyps = model.decoding.ctc_decoder_predictions_tensor(
                    log_probs, decoder_lengths=enc_len)
            if isinstance(hyps, tuple):
                hyps = hyps[0]
            for i, h in zip(idx, hyps):
                out[i] = normalize_text(h.text if hasattr(h, "text") else str(h))
    return out


def _edit_ops(ref: list, hyp: list):
    """Levenshtein alignment; returns (distance, ops) with ops in ('=', 'S', 'D', 'I')."""
    n, m = len(ref), len(hyp)
    d = np.zeros((n + 1, m + 1), dtype=np.int32)
    d[:, 0] = np.arange(n + 1)
    d[0, :] = np.arange(m + 1)
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            d[i, j] = min(d[i - 1, j] + 1, d[i, j - 1] + 1,
                          d[i - 1, j - 1] + (ref[i - 1] != hyp[j - 1]))
    ops, i, j = [], n, m
    while i or j:
        if i and j and d[i, j] == d[i - 1, j - 1] + (ref[i - 1] != hyp[j - 1]):
            ops.append(("=" if ref[i - 1] == hyp[j - 1] else "S", i - 1))
            i, j = i - 1, j - 1
        elif i and d[i, j] == d[i - 1, j] + 1:
            ops.append(("D", i - 1))
            i -= 1
        else:
            ops.append(("I", i))
            j -= 1
    return int(d[n, m]), ops[::-1]


def homophones(words: list[str] | None = None, voice: str = "en-us") -> dict[str, str]:
    """Words espeak-ng pronounces identically (same phonemes), mapped to one spelling.

    With random word sequences there is no context to tell "to" from "two": these set a floor
    under any model's WER on this data, reported beside the strict WER, never instead of it.
    """
    words = sorted(set(words or load_words()))
    out = subprocess.run(["espeak-ng", "-q", "-x", "-v", voice, "--stdin"],
                         input="\n".join(w + "." for w in words), capture_output=True, text=True,
                         check=True).stdout
    phonemes = [line.strip() for line in out.strip().split("\n") if line.strip()]
    if len(phonemes) != len(words):
        return {}
    first: dict[str, str] = {}
    canon = {}
    for w, ph in zip(words, phonemes):
        canon[w] = first.setdefault(ph, w)
    return {w: c for w, c in canon.items() if w != c or list(canon.values()).count(c) > 1}


def canonical(text: str, canon: dict[str, str]) -> str:
    return " ".join(canon.get(w, w) for w in text.split())


def error_rates(refs: list[str], hyps: list[str]) -> dict:
    we = wn = ce = cn = 0
    for r, h in zip(refs, hyps):
        we += _edit_ops(r.split(), h.split())[0]
        wn += len(r.split())
        ce += _edit_ops(list(r), list(h))[0]
        cn += len(r)
    return {"wer": we / max(1, wn), "cer": ce / max(1, cn), "words": wn}


def dropped_words(ref: str, hyp: str) -> dict:
    """Deleted reference words, by position: first/last 10 % of the words vs the middle."""
    words = ref.split()
    _, ops = _edit_ops(words, hyp.split())
    dels = [i for op, i in ops if op == "D"]
    n = len(words)
    edge = max(1, n // 10)
    return {"start": [words[i] for i in dels if i < edge],
            "middle": [words[i] for i in dels if edge <= i < n - edge],
            "end": [words[i] for i in dels if i >= n - edge]}


def evaluate(model, heldout_audio, heldout_items, long_audio, long_items) -> dict:
    t0 = time.time()
    hyps = transcribe_arrays(model, heldout_audio)
    refs = [it["text"] for it in heldout_items]
    res = {"heldout": error_rates(refs, hyps)}
    res["heldout"]["utterances"] = len(refs)
    res["heldout"]["examples"] = [{"ref": r, "hyp": h} for r, h in zip(refs, hyps) if r != h][:10]
    longs = []
    for audio, it in zip(long_audio, long_items):
        hyp = transcribe_arrays(model, [audio], batch_size=1)[0]
        er = error_rates([it["text"]], [hyp])
        longs.append({"seconds": round(len(audio) / SR, 1), "sentences": len(it["texts"]),
                      "voice": it["voice"], "rate": it["rate"], "pitch": it["pitch"],
                      "wer": er["wer"], "cer": er["cer"], "words": er["words"],
                      "dropped": dropped_words(it["text"], hyp), "ref": it["text"], "hyp": hyp})
    res["long"] = {"utterances": longs,
                   "wer": error_rates([it["text"] for it in long_items],
                                      [u["hyp"] for u in longs])["wer"] if longs else None,
                   "cer": error_rates([it["text"] for it in long_items],
                                      [u["hyp"] for u in longs])["cer"] if longs else None}
    res["eval_seconds"] = round(time.time() - t0, 1)
    return res


# --------------------------------------------------------------------------- measuring
def measure_step_times(train_audio, train_texts, tokenizer_dir, steps: int = 8,
                       batch_size: int = 32, log=print) -> dict:
    """Seconds per training step, CTC vs TDT (pure-PyTorch loss), same encoder and batches."""
    import torch

    out = {}
    for family in ("ctc", "tdt"):
        model = build_model(model_config(tokenizer_dir, family))
        model.train()
        rng = random.Random(0)
        batches = make_batches([len(a) for a in train_audio], batch_size, rng)[:steps + 1]
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        times = []
        for b in batches:
            t = time.time()
            x, xl, y, yl = _pad_batch([train_audio[i] for i in b],
                                      [model.tokenizer.text_to_ids(train_texts[i]) for i in b])
            try:
                loss = compute_loss(model, x, xl, y, yl)
            except (AssertionError, RuntimeError) as e:  # tdt_pytorch calls .cuda()
                out[family] = {"error": f"{type(e).__name__}: {e}", "params": count_params(model)}
                break
            opt.zero_grad()
            loss.backward()
            opt.step()
            times.append(time.time() - t)
        if family not in out:
            out[family] = {"s_per_step": float(np.median(times[1:] or times)),
                           "params": count_params(model)}
        log(f"{family}: {out[family]}")
    return out


# --------------------------------------------------------------------------- main
def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for k, v in DEFAULTS.items():
        p.add_argument("--" + k.replace("_", "-"), type=type(v), default=v)
    p.add_argument("--seed", type=int, default=SEED)
    p.add_argument("--procs", type=int, default=2)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--workdir", type=Path, default=REPO / ".cache" / "train-tiny-en")
    p.add_argument("--max-minutes", type=float, default=None,
                   help="time budget for training: the cosine schedule follows whichever of "
                        "steps or elapsed time runs out first (not bit-reproducible when it binds)")
    p.add_argument("--init-from", type=Path, default=None,
                   help="start from these weights (a .nemo or a checkpoint.pt of this script with "
                        "the same settings) instead of random ones: a second training stage")
    p.add_argument("--no-checkpoint", action="store_true",
                   help="do not save/resume WORKDIR/checkpoint.pt after each epoch")
    p.add_argument("--make-sample", action="store_true",
                   help="only write models/data/sample-en.wav and .txt")
    p.add_argument("--sample-dir", type=Path, default=SAMPLE_DIR)
    p.add_argument("--measure", action="store_true",
                   help="only measure CTC vs TDT step times on a small batch set")
    a = p.parse_args(argv)

    if a.make_sample:
        wav, txt = make_sample(a.sample_dir, a.seed)
        print(f"wrote {wav} and {txt}: {txt.read_text().strip()!r}")
        return 0

    import torch

    torch.set_num_threads(2)
    random.seed(a.seed)
    np.random.seed(a.seed)
    torch.manual_seed(a.seed)
    quiet_nemo()

    t0 = time.time()
    train_items, heldout_items, long_items = build_datasets(
        a.utterances, a.heldout, a.long_utterances, a.seed, a.multi_fraction)
    train_audio = synthesize(train_items, a.procs)
    heldout_audio = synthesize(heldout_items, a.procs)
    long_audio = synthesize(long_items, a.procs)
    gen_s = time.time() - t0
    train_hours = sum(len(x) for x in train_audio) / SR / 3600
    print(f"generated {len(train_audio)} training ({train_hours:.2f} h), {len(heldout_audio)} "
          f"held-out, {len(long_audio)} long utterances in {gen_s:.1f} s", flush=True)

    train_texts = [it["text"] for it in train_items]
    uniq = sorted({s for it in train_items for s in it["texts"]})
    tok_dir = train_tokenizer(uniq, a.workdir / "tokenizer", a.vocab_size)

    if a.measure:
        print(json.dumps(measure_step_times(train_audio, train_texts, tok_dir), indent=1))
        return 0

    cfg = model_config(tok_dir, "ctc", a.d_model, a.n_layers, a.n_heads, a.subsampling,
                       conv_channels=a.conv_channels)
    model = build_model(cfg)
    n_params = count_params(model)
    print(f"model: {n_params} parameters", flush=True)
    if a.init_from:
        import torch

        if a.init_from.suffix == ".nemo":
            from nemo.collections.asr.models import ASRModel

            cwd = os.getcwd()
            try:
                weights = ASRModel.restore_from(str(a.init_from), map_location="cpu").state_dict()
            finally:
                os.chdir(cwd)
        else:
            weights = torch.load(a.init_from, map_location="cpu", weights_only=False)["model"]
        model.load_state_dict(weights)
        print(f"initialised from {a.init_from} (a second stage: new schedule, same data)", flush=True)
    deadline = time.time() + a.max_minutes * 60 if a.max_minutes else None
    quick = list(range(0, len(heldout_items), max(1, len(heldout_items) // 100)))

    def quick_check(epoch):
        hyps = transcribe_arrays(model, [heldout_audio[i] for i in quick])
        er = error_rates([heldout_items[i]["text"] for i in quick], hyps)
        print(f"epoch {epoch}: held-out WER {er['wer']:.2%} CER {er['cer']:.2%} "
              f"({len(quick)} utterances)", flush=True)

    ckpt = None if a.no_checkpoint else a.workdir / "checkpoint.pt"
    tr = train_model(model, train_audio, train_texts, a.epochs, a.batch_size, a.lr, a.warmup,
                     a.seed, deadline=deadline, log=lambda s: print(s, flush=True),
                     checkpoint=ckpt, on_epoch=quick_check,
                     checkpoint_key=json.dumps({k: v for k, v in vars(a).items()
                                                if k in DEFAULTS and k != "epochs"
                                                or k in ("seed", "init_from")},
                                               default=str,
                                               sort_keys=True))
    print(f"trained {tr['steps']} steps in {tr['seconds']:.0f} s", flush=True)

    a.out.parent.mkdir(parents=True, exist_ok=True)
    cwd = os.getcwd()
    try:
        model.save_to(str(a.out))
    finally:
        os.chdir(cwd)
    ev = evaluate(model, heldout_audio, heldout_items, long_audio, long_items)

    report = {
        "model": a.out.name,
        "family": "ctc",
        "class": type(model).__name__,
        "why_not_tdt": "see the script docstring: no CPU TDT loss in numba; tdt_pytorch is far "
                       "slower per step than CTC on this 2-core CPU",
        "tokenizer": {"type": "sentencepiece-bpe", "vocab_size": a.vocab_size,
                      "trained_on": "training sentences only"},
        "encoder": {"type": "FastConformer", "d_model": a.d_model, "n_layers": a.n_layers,
                    "subsampling_conv_channels": a.conv_channels,
                    "n_heads": a.n_heads, "subsampling": "dw_striding",
                    "subsampling_factor": a.subsampling},
        "params": n_params,
        "nemo_bytes": a.out.stat().st_size,
        "seed": a.seed,
        "init_from": None if a.init_from is None else str(a.init_from),
        "epochs": a.epochs,
        "batch_size": a.batch_size,
        "lr": a.lr,
        "steps": tr["steps"],
        "planned_steps": tr["planned_steps"],
        "stopped_early": tr["stopped_early"],
        "final_loss": float(np.mean(tr["losses"][-50:])),
        "samples": {"train": len(train_items), "train_hours": round(train_hours, 3),
                    "train_multi_sentence": sum(len(it["texts"]) > 1 for it in train_items),
                    "heldout": len(heldout_items), "long": len(long_items)},
        "voices": list(VOICES), "rate_wpm": list(RATE_RANGE), "pitch": list(PITCH_RANGE),
        "data_generation_seconds": round(gen_s, 1),
        "training_seconds": round(tr["seconds"], 1),
        "torch_threads": torch.get_num_threads(),
        "heldout": ev["heldout"],
        "long": ev["long"],
    }
    json_path = a.out.with_suffix(".json")
    json_path.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print(f"held-out WER {ev['heldout']['wer']:.2%} CER {ev['heldout']['cer']:.2%} "
          f"({ev['heldout']['utterances']} utterances)")
    for u in ev["long"]["utterances"]:
        print(f"long {u['seconds']} s, {u['sentences']} sentences: WER {u['wer']:.2%} "
              f"CER {u['cer']:.2%} dropped {u['dropped']}")
    print(f"params {n_params}, {a.out} {a.out.stat().st_size / 1e6:.2f} MB; "
          f"data {gen_s:.0f} s, training {tr['seconds']:.0f} s; report {json_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
