"""The training loop: length-bucketed in-memory batches, AdamW with warm-up and cosine decay,
and a checkpoint after every epoch that a killed run resumes from.

Two stages, because a transducer's joint network costs (frames x labels) per utterance and a
CTC head costs nothing next to the encoder: the first ``ctc_epochs`` train the encoder with the
CTC head alone (on two cores about a third of a hybrid step), the rest train the hybrid
TDT + CTC loss from that encoder, with a warm-up and cosine schedule of their own.

No Lightning and no dataloader workers: on two cores the padding saved by bucketing is worth
more than anything they add, and a plain loop is easy to make deterministic (every random
stream it uses, Python's included, is seeded and saved in the checkpoint).
"""
from __future__ import annotations

import math
import os
import random
import shutil
import time
from pathlib import Path

import numpy as np

#: each training utterance is scaled by a random gain in this range: the preprocessor does not
#: normalise, so the model must not depend on one recording level
GAIN_RANGE = (0.25, 1.0)
#: each training utterance gets a random stretch of silence before and after it, up to this
#: many seconds (0: none). espeak-ng's own lead-in is ~12 ms, and a model that only ever heard
#: that is brittle to framing: the worker's ``settle_edges`` gives every piece 0.2 s before its
#: first sound, which cost the first tiny-en v2 0.7-0.9 WER points (5.15 -> 6.03 % natural)
EDGE_PAD_S = 0.5


def pad_batch(audios: list[np.ndarray], targets: list[list[int]] | None = None,
              gains: list[float] | None = None, edges: list[tuple[int, int]] | None = None):
    """A padded batch; ``edges[i] = (lead, tail)`` puts that many zero samples before and
    after utterance ``i`` (its length includes them)."""
    import torch

    edges = edges or [(0, 0)] * len(audios)
    lens = [lead + len(a) + tail for a, (lead, tail) in zip(audios, edges)]
    x = torch.zeros(len(audios), max(lens))
    for i, a in enumerate(audios):
        lead = edges[i][0]
        x[i, lead:lead + len(a)] = torch.from_numpy(
            a.astype(np.float32) / 32767.0 if a.dtype == np.int16 else a)
        if gains is not None:
            x[i] *= gains[i]
    out = [x, torch.tensor(lens)]
    if targets is not None:
        tl = [len(t) for t in targets]
        y = torch.zeros(len(targets), max(tl), dtype=torch.long)
        for i, t in enumerate(targets):
            y[i, :len(t)] = torch.tensor(t)
        out += [y, torch.tensor(tl)]
    return out


def make_batches(lengths: list[int], batch_size: int, rng: random.Random,
                 max_samples: int | None = None) -> list[list[int]]:
    """Length-bucketed batches (sorted by jittered length), in a shuffled order.

    With ``max_samples``, a batch of long utterances holds fewer of them, so that batch size
    times its longest utterance stays within the budget: a few 15 s items with pauses would
    otherwise make a 32-item batch cost ten ordinary ones.
    """
    order = sorted(range(len(lengths)), key=lambda i: lengths[i] * rng.uniform(0.9, 1.1))
    batches, cur, longest = [], [], 0
    for i in order:
        longest_if = max(longest, lengths[i])
        if cur and (len(cur) >= batch_size or (max_samples and (len(cur) + 1) * longest_if > max_samples)):
            batches.append(cur)
            cur, longest_if = [], lengths[i]
        cur.append(i)
        longest = longest_if
    if cur and (len(cur) == batch_size or not batches or max_samples):
        batches.append(cur)  # drop an incomplete last batch when the batches are fixed-size
    rng.shuffle(batches)
    return batches


def compute_loss(model, tdt_loss, x, xl, y, yl, ctc_weight: float,
                 inter_ctc: tuple[int, float] | None = None):
    """(1 - w) * TDT + w * CTC, both averaged over the batch as NeMo's hybrid models train;
    with w = 1 the joint network is not run at all.

    ``inter_ctc = (layer, v)`` adds an intermediate CTC loss (NeMo's InterCTC): the same CTC
    head reads the output of encoder layer ``layer`` (1-based) and the CTC term becomes
    ``(1 - v) * final + v * intermediate``. It gives the lower layers a short path to the
    loss; inference and the saved model are unchanged."""
    captured: list = []
    hook = None
    if inter_ctc is not None:
        hook = model.encoder.layers[inter_ctc[0] - 1].register_forward_hook(
            lambda _m, _i, out: captured.append(out[0] if isinstance(out, tuple) else out))
    try:
        enc, enc_len = model.forward(input_signal=x, input_signal_length=xl)
    finally:
        if hook is not None:
            hook.remove()
    log_probs = model.ctc_decoder(encoder_output=enc)
    ctc = model.ctc_loss(log_probs=log_probs, targets=y, input_lengths=enc_len, target_lengths=yl)
    if captured:  # the layer's output is (B, T, D); the head reads (B, D, T)
        inter = model.ctc_decoder(encoder_output=captured[-1].transpose(1, 2))
        ctc_i = model.ctc_loss(log_probs=inter, targets=y, input_lengths=enc_len, target_lengths=yl)
        ctc = (1 - inter_ctc[1]) * ctc + inter_ctc[1] * ctc_i
    if ctc_weight >= 1.0:
        return ctc, float("nan"), float(ctc)
    dec, _, _ = model.decoder(targets=y, target_length=yl)
    joint = model.joint(encoder_outputs=enc, decoder_outputs=dec)
    tdt = tdt_loss(joint, y, enc_len, yl)
    return (1 - ctc_weight) * tdt + ctc_weight * ctc, float(tdt), float(ctc)


def _cosine(step: int, total: int, peak: float, warmup: int) -> float:
    warm = min(warmup, max(1, total // 10))
    if step < warm:
        return peak * (step + 1) / warm
    p = min(1.0, (step - warm) / max(1, total - warm))
    return 1e-5 + (peak - 1e-5) * 0.5 * (1 + math.cos(math.pi * p))


def train_model(model, audios: list[np.ndarray], texts: list[str], epochs: int,
                batch_size: int = 32, lr: float = 2e-3, warmup: int = 600, seed: int = 1234,
                ctc_weight: float = 0.3, max_steps: int | None = None, log_every: int = 50,
                log=print, checkpoint: Path | None = None, checkpoint_key: str = "",
                on_epoch=None, ctc_epochs: int = 0, lr2: float | None = None, warmup2: int = 200,
                max_samples: int | None = None, check_every: int = 0, on_check=None,
                inter_ctc: tuple[int, float] | None = None, extra_epochs: int = 0,
                lr3: float | None = None, warmup3: int = 150, extra_key: str = "",
                edge_pad_s: float = 0.0, sample_rate: int = 16000) -> dict:
    """Returns {'losses': [...], 'steps': n, 'seconds': s, 'planned_steps': n}.

    The first ``ctc_epochs`` epochs train with the CTC head alone (peak ``lr``, ``warmup``
    steps), the others with the hybrid loss (peak ``lr2``, ``warmup2``), each stage with its
    own warm-up and cosine decay. With ``max_steps`` there is one hybrid stage of that many
    steps. With ``checkpoint``, the model, optimizer, step, elapsed time and every RNG state
    are saved there after every epoch, and a run that finds one (with the same
    ``checkpoint_key``) resumes from it, so a killed run loses at most one epoch and ends with
    the same weights. ``on_epoch(epoch)`` runs after each epoch (a quick held-out check), and
    ``on_check(step)`` every ``check_every`` steps (a cheaper one: the first epoch is where a
    run that will not leave CTC's blank plateau shows it). Neither uses a random stream.
    ``inter_ctc = (layer, weight)`` adds an intermediate CTC loss (:func:`compute_loss`).
    ``extra_epochs`` more hybrid epochs follow with a third schedule of their own (peak
    ``lr3``): the first two stages are what they would be without them, so a checkpoint from
    the end of stage two (keyed ``checkpoint_key``) resumes into stage three (``extra_key``).
    ``edge_pad_s`` adds up to that much silence before and after each utterance (drawn
    uniformly, per utterance and epoch, from the batch order's own seeded stream).
    """
    import torch

    from tinyen.tdt_loss import TDTLoss

    torch.manual_seed(seed)
    random.seed(seed)  # NeMo picks each batch's attention context with Python's random
    tdt_loss = TDTLoss(blank=model.tokenizer.vocab_size, durations=list(model.cfg.decoding.durations),
                       sigma=float(model.cfg.loss.tdt_kwargs.sigma))
    targets = [model.tokenizer.text_to_ids(t) for t in texts]
    lengths = [len(a) for a in audios]
    dev = next(model.parameters()).device  # batches are built on the CPU, then moved

    def epoch_batches(epoch: int) -> tuple[random.Random, list[list[int]]]:
        rng = random.Random(f"{seed}-batches-{epoch}")
        return rng, make_batches(lengths, batch_size, rng, max_samples)

    if max_steps is not None:
        ctc_epochs, stage1, total = 0, 0, max_steps
    else:
        per_epoch = [len(epoch_batches(e)[1]) for e in range(epochs + extra_epochs)]
        stage1, total = sum(per_epoch[:ctc_epochs]), sum(per_epoch)
    stage2 = total if max_steps is not None else sum(per_epoch[:epochs])
    lr2 = lr if lr2 is None else lr2
    lr3 = lr2 if lr3 is None else lr3
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.98), weight_decay=1e-3)

    def lr_at(step):
        if step < stage1:
            return _cosine(step, stage1, lr, warmup)
        if step < stage2:
            return _cosine(step - stage1, stage2 - stage1, lr2, warmup2 if stage1 else warmup)
        return _cosine(step - stage2, total - stage2, lr3, warmup3)

    def key_at(epoch):  # what settings the weights after ``epoch`` epochs depend on
        return checkpoint_key if epoch <= epochs else checkpoint_key + extra_key

    model.train()
    losses, step, first_epoch, elapsed0 = [], 0, 0, 0.0
    state = None
    if checkpoint is not None and checkpoint.is_file():
        state = torch.load(checkpoint, map_location=dev, weights_only=False)
        if state.get("key") != key_at(state.get("epoch", 0)):
            log(f"ignoring {checkpoint}: it is from a run with other settings")
            state = None
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        losses, step, first_epoch = state["losses"], state["step"], state["epoch"]
        elapsed0 = state["elapsed"]
        torch.set_rng_state(state["torch_rng"].cpu())
        random.setstate(state["py_rng"])
        log(f"resumed from {checkpoint}: epoch {first_epoch}, step {step}")
    t0 = time.time() - elapsed0
    epoch_range = range(first_epoch, epochs + extra_epochs) if max_steps is None else range(first_epoch, 10**9)
    for epoch in epoch_range:
        ep_losses = []
        weight = 1.0 if epoch < ctc_epochs else ctc_weight
        rng, batches = epoch_batches(epoch)
        for b in batches:
            for g in opt.param_groups:
                g["lr"] = lr_at(step)
            gains = [rng.uniform(*GAIN_RANGE) for _ in b]
            pad = round(edge_pad_s * sample_rate)
            edges = [(rng.randint(0, pad), rng.randint(0, pad)) for _ in b] if pad else None
            x, xl, y, yl = (t.to(dev) for t in pad_batch(
                [audios[i] for i in b], [targets[i] for i in b], gains, edges))
            loss, tdt, ctc = compute_loss(model, tdt_loss, x, xl, y, yl, weight, inter_ctc)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            losses.append(float(loss))
            ep_losses.append((tdt, ctc))
            step += 1
            if log_every and step % log_every == 0:
                recent = np.mean(ep_losses[-log_every:], axis=0)
                log(f"step {step}/{total} epoch {epoch + 1} loss {np.mean(losses[-log_every:]):.2f} "
                    f"(tdt {recent[0]:.2f} ctc {recent[1]:.2f}) lr {lr_at(step):.2e} "
                    f"{(time.time() - t0) / step:.2f} s/step")
            if check_every and on_check is not None and step % check_every == 0:
                on_check(step)
                model.train()
            if step >= total:
                break
        if ep_losses and log_every:
            m = np.mean(ep_losses, axis=0)
            log(f"epoch {epoch + 1} done: tdt {m[0]:.2f} ctc {m[1]:.2f}, {time.time() - t0:.0f} s")
        if checkpoint is not None:
            checkpoint.parent.mkdir(parents=True, exist_ok=True)
            tmp = checkpoint.with_suffix(".tmp")
            torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "losses": losses,
                        "step": step, "epoch": epoch + 1, "elapsed": time.time() - t0,
                        "torch_rng": torch.get_rng_state(), "py_rng": random.getstate(),
                        "key": key_at(epoch + 1)}, tmp)
            os.replace(tmp, checkpoint)
            if epoch + 1 == ctc_epochs < epochs:
                # the encoder and CTC head at the end of their own schedule: a finished CTC
                # model to fall back on if the hybrid stage cannot finish in the time there is
                shutil.copyfile(checkpoint, checkpoint.with_name("checkpoint-ctc-stage.pt"))
        if on_epoch is not None:  # after the checkpoint: it uses no random stream anyway
            on_epoch(epoch + 1)
            model.train()
        if step >= total:
            break
    model.eval()
    return {"losses": losses, "steps": step, "seconds": time.time() - t0, "planned_steps": total}
