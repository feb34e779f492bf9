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
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

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
            warmup: int = 30, every: int = 50, seed: int = 0, log=print) -> list[tuple]:
    """Train the CTC head alone on (audio, texts); [(step, nats per token, exact), ...]."""
    import torch

    torch.manual_seed(seed)
    random.seed(seed)  # NeMo draws each batch's attention context from Python's random
    targets = [model.tokenizer.text_to_ids(t) for t in texts]
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.98), weight_decay=1e-3)
    rng = random.Random(seed)
    history, t0 = [], time.time()
    for step in range(1, steps + 1):
        for g in opt.param_groups:
            g["lr"] = lr * min(1.0, step / warmup)
        b = rng.sample(range(len(audio)), min(batch_size, len(audio)))
        gains = [rng.uniform(*GAIN_RANGE) for _ in b]
        x, xl, y, yl = pad_batch([audio[i] for i in b], [targets[i] for i in b], gains)
        model.train()
        loss, _, _ = compute_loss(model, None, x, xl, y, yl, 1.0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        if step % every == 0 or step == steps:
            nats, exact, hyps = evaluate_ctc(model, audio, texts)
            history.append((step, nats, exact))
            log(f"step {step}: CTC {nats:.3f} nats/token, {exact}/{len(texts)} exact "
                f"({hyps[0]!r} for {texts[0]!r}), {time.time() - t0:.0f} s")
    return history


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=64)
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--every", type=int, default=50)
    p.add_argument("--vocab-size", type=int, default=1024)
    p.add_argument("--d-model", type=int, default=96)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--conv-channels", type=int, default=32)
    p.add_argument("--no-streaming", action="store_true", help="v1's non-causal encoder")
    p.add_argument("--encoder", default=None, help="JSON overrides of the encoder config")
    p.add_argument("--normalize", default=None, help="override the preprocessor's normalize")
    p.add_argument("--seed", type=int, default=datasets.SEED)
    p.add_argument("--workdir", type=Path, default=Path(".cache") / "overfit")
    a = p.parse_args(argv)

    import torch

    from tinyen import model as tiny_model

    torch.set_num_threads(1)
    audio, texts = make_set(a.n, a.seed)
    tok = tiny_model.train_tokenizer(sorted(set(texts)), a.workdir / f"tokenizer-{a.n}-{a.vocab_size}",
                                     a.vocab_size)
    cfg = tiny_model.model_config(tok, a.d_model, a.layers, 4, a.conv_channels, 64, 1.0,
                                  streaming=not a.no_streaming)
    if a.encoder:
        cfg["encoder"].update(json.loads(a.encoder))
    if a.normalize:
        cfg["preprocessor"]["normalize"] = a.normalize
    torch.manual_seed(a.seed)
    model = tiny_model.build_model(cfg)
    print(f"{a.n} utterances, {sum(len(x) for x in audio) / speech.SR:.0f} s, "
          f"{tiny_model.count_params(model)} parameters", flush=True)
    overfit(model, audio, texts, a.steps, a.lr, every=a.every, seed=a.seed,
            log=lambda s: print(s, flush=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
