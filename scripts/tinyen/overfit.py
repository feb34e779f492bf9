"""A memorisation check for tiny-en's training pipeline: can the model learn a few utterances?

A model that cannot memorise 32-64 short utterances has a broken pipeline (features, targets,
blank index, lengths, loss) or a configuration that learns too slowly; one that can, but then
sits on CTC's blank plateau on the full data, needs more steps or a better schedule, not a
fix to its inputs. This trains the CTC head alone (the stage that sat on the plateau) on the
same pieces the real trainer uses (``tinyen.train.pad_batch`` with its random gains,
``tinyen.train.compute_loss``, ``tinyen.model.model_config``) and prints, every ``--every``
steps, the CTC loss per target token over the whole set in eval mode and how many greedy CTC
transcripts equal their text.

Usage (about 0.15 s a step for the small default model on one thread)::

    .venv/bin/python scripts/tinyen/overfit.py --steps 600
    .venv/bin/python scripts/tinyen/overfit.py --steps 600 --no-streaming   # v1-like encoder
    .venv/bin/python scripts/tinyen/overfit.py --d-model 144 --layers 7 --conv-channels 64 \\
        --encoder '{"att_context_style": "regular", "att_context_size": [-1, -1]}'
    # the shape train_tiny_model.py trains by default, then streamed chunk by chunk
    .venv/bin/python scripts/tinyen/overfit.py --d-model 256 --layers 2 --heads 8 \\
        --conv-channels 64 --steps 500 --stream-check 32

On one thread that 2 x 256 shape leaves the plateau by step 200-300 (0.08 nats/token,
61/64 exact at 500); 7 x 144 sat at 4.2-4.4 nats/token for 1000 steps.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    # run as a file, its own folder leads sys.path and tinyen/datasets.py would shadow the
    # datasets package NeMo imports: put scripts/ there instead
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from tinyen import datasets, speech  # noqa: E402
from tinyen.evaluate import ctc_nats_per_token, transcribe_arrays  # noqa: E402
from tinyen.lexicon import load_words  # noqa: E402
from tinyen.train import GAIN_RANGE, compute_loss, pad_batch  # noqa: E402


def make_set(n: int, seed: int, words_range: tuple[int, int] = (2, 4)):
    """``n`` short random word sequences, each spoken with a random voice; (audio, texts)."""
    words = load_words()
    rng = random.Random(f"{seed}-overfit")
    items = [speech.make_item(rng, [datasets.random_sentence(rng, words, *words_range)])
             for _ in range(n)]
    return speech.synthesize(items, 1), [it["text"] for it in items]


def evaluate_ctc(model, audio, texts) -> tuple[float, int, list[str]]:
    """(CTC nats per target token over the set, exact greedy transcripts, the transcripts)."""
    hyps = transcribe_arrays(model, audio, head="ctc")
    return ctc_nats_per_token(model, audio, texts), sum(h == t for h, t in zip(hyps, texts)), hyps


def overfit(model, audio, texts, steps: int, lr: float = 2e-3, batch_size: int = 16,
            warmup: int = 30, every: int = 50, seed: int = 0, log=print,
            inter_ctc: tuple[int, float] | None = None, first_step: int = 1) -> list[tuple]:
    """Train the CTC head alone on (audio, texts); [(step, nats per token, exact), ...].

    ``first_step`` > 1 continues a schedule (the steps are numbered on from it)."""
    import torch

    torch.manual_seed(seed)
    random.seed(seed)  # NeMo draws each batch's attention context from Python's random
    targets = [model.tokenizer.text_to_ids(t) for t in texts]
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.98), weight_decay=1e-3)
    rng = random.Random(seed)
    history, t0 = [], time.time()
    for step in range(first_step, first_step + steps):
        for g in opt.param_groups:
            g["lr"] = lr * min(1.0, step / warmup)
        b = rng.sample(range(len(audio)), min(batch_size, len(audio)))
        gains = [rng.uniform(*GAIN_RANGE) for _ in b]
        x, xl, y, yl = pad_batch([audio[i] for i in b], [targets[i] for i in b], gains)
        model.train()
        loss, _, _ = compute_loss(model, None, x, xl, y, yl, 1.0, inter_ctc)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        if step % every == 0 or step == first_step + steps - 1:
            nats, exact, hyps = evaluate_ctc(model, audio, texts)
            history.append((step, nats, exact))
            log(f"step {step}: CTC {nats:.3f} nats/token, {exact}/{len(texts)} exact "
                f"({hyps[0]!r} for {texts[0]!r}), {time.time() - t0:.0f} s")
    return history


def stream_check(model, audio, texts) -> None:
    """For 160 and 560 ms chunks, print how many of ``texts`` the CTC head gets exactly chunk by
    chunk, and how many of those transcripts equal offline ones with the same attention
    context (the same weights must serve both: a difference is the streaming path's, not the
    model's)."""
    from tinyen.evaluate import transcribe_streaming
    from tinyen.model import ATT_CONTEXTS, CHUNK_MS

    offline = transcribe_arrays(model, audio, head="ctc")
    print(f"offline (right context {ATT_CONTEXTS[0][1]}): "
          f"{sum(h == t for h, t in zip(offline, texts))}/{len(texts)} exact", flush=True)
    # only the CTC head is trained here: the streaming step must decode with it too
    previous, model.cur_decoder = model.cur_decoder, "ctc"
    try:
        for right in (1, 6):
            model.encoder.set_default_att_context_size([ATT_CONTEXTS[0][0], right])
            same_context = transcribe_arrays(model, audio, head="ctc")
            model.encoder.set_default_att_context_size(ATT_CONTEXTS[0])
            hyps = [transcribe_streaming(model, x, right) for x in audio]
            print(f"streaming {CHUNK_MS[right]} ms: {sum(h == t for h, t in zip(hyps, texts))}/"
                  f"{len(texts)} exact, {sum(h == o for h, o in zip(hyps, same_context))} equal to "
                  f"offline with the same context", flush=True)
            for h, o in zip(hyps, same_context):
                if h != o:
                    print(f"  streamed {h!r}, offline {o!r}", flush=True)
    finally:
        model.cur_decoder = previous
        model.encoder.set_default_att_context_size(ATT_CONTEXTS[0])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=64)
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--warmup", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--every", type=int, default=50)
    p.add_argument("--vocab-size", type=int, default=1024)
    p.add_argument("--d-model", type=int, default=96)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--conv-channels", type=int, default=32)
    p.add_argument("--no-streaming", action="store_true", help="v1's non-causal encoder")
    p.add_argument("--encoder", default=None, help="JSON overrides of the encoder config")
    p.add_argument("--normalize", default=None, help="override the preprocessor's normalize")
    p.add_argument("--inter-ctc", default=None, metavar="LAYER:WEIGHT",
                   help="an intermediate CTC loss on that encoder layer's output, e.g. 2:0.5")
    p.add_argument("--pretrain", type=int, default=0, metavar="STEPS",
                   help="first train the same weights with full attention and non-causal "
                        "convolutions for STEPS steps, then switch to streaming for --steps")
    p.add_argument("--branch-init", type=float, default=None, metavar="SCALE",
                   help="scale each residual branch's last projection at init "
                        "(tinyen.model.scale_residual_branches)")
    p.add_argument("--stream-check", type=int, default=0, metavar="N",
                   help="after training, transcribe the first N utterances chunk by chunk "
                        "(tinyen.evaluate.transcribe_streaming, 160 and 560 ms) beside offline")
    p.add_argument("--save", type=Path, default=None,
                   help="save {'cfg', 'state'} of the trained model there (torch.save)")
    p.add_argument("--seed", type=int, default=datasets.SEED)
    p.add_argument("--workdir", type=Path, default=Path(".cache") / "overfit")
    a = p.parse_args(argv)

    import torch

    from tinyen import model as tiny_model

    torch.set_num_threads(1)
    audio, texts = make_set(a.n, a.seed)
    # one folder per set: runs side by side with other seeds must not share a tokenizer
    tok = tiny_model.train_tokenizer(sorted(set(texts)),
                                     a.workdir / f"tokenizer-{a.n}-{a.vocab_size}-{a.seed}",
                                     a.vocab_size)
    cfg = tiny_model.model_config(tok, a.d_model, a.layers, a.heads, a.conv_channels, 64, 1.0,
                                  streaming=not a.no_streaming)
    if a.encoder:
        cfg["encoder"].update(json.loads(a.encoder))
    if a.normalize:
        cfg["preprocessor"]["normalize"] = a.normalize
    inter = None
    if a.inter_ctc:
        layer, weight = a.inter_ctc.split(":")
        inter = (int(layer), float(weight))
    log = lambda s: print(s, flush=True)  # noqa: E731
    torch.manual_seed(a.seed)
    if a.pretrain:
        # the streaming pieces change no parameter shape (a causal convolution pads on one
        # side, limited attention is a mask): only the layer-norm convolution norm is kept
        pre = json.loads(json.dumps(cfg))
        pre["encoder"].update({"causal_downsampling": False, "att_context_style": "regular",
                               "att_context_size": [-1, -1], "conv_context_size": None})
        model = tiny_model.build_model(pre)
        if a.branch_init is not None:
            tiny_model.scale_residual_branches(model, a.branch_init)
        print(f"pre-training {a.pretrain} steps without streaming, "
              f"{tiny_model.count_params(model)} parameters", flush=True)
        overfit(model, audio, texts, a.pretrain, a.lr, a.batch_size, a.warmup, a.every, a.seed,
                log, inter)
        weights = model.state_dict()
        model = tiny_model.build_model(cfg)
        model.load_state_dict(weights)
        print("switched to streaming", flush=True)
        overfit(model, audio, texts, a.steps, a.lr, a.batch_size, a.warmup, a.every, a.seed,
                log, inter, first_step=a.pretrain + 1)
        if a.stream_check:
            stream_check(model, audio[:a.stream_check], texts[:a.stream_check])
        return 0
    model = tiny_model.build_model(cfg)
    if a.branch_init is not None:
        tiny_model.scale_residual_branches(model, a.branch_init)
    print(f"{a.n} utterances, {sum(len(x) for x in audio) / speech.SR:.0f} s, "
          f"{tiny_model.count_params(model)} parameters", flush=True)
    overfit(model, audio, texts, a.steps, a.lr, a.batch_size, a.warmup, a.every, a.seed, log, inter)
    if a.save:
        torch.save({"cfg": cfg, "state": model.state_dict()}, a.save)
    if a.stream_check:
        stream_check(model, audio[:a.stream_check], texts[:a.stream_check])
    return 0


if __name__ == "__main__":
    sys.exit(main())
