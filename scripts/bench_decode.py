"""Greedy TDT decode time: NeMo's greedy_batch against models/tdt_greedy.py, side by side.

Encoder outputs are computed once; then, per clip, the two decoders run interleaved (the
order alternating) N times on the same encoder output, with the worker's settings (2 threads,
inference mode, mkldnn off). Prints the median of each and the ratio ours/NeMo's; timings on a
loaded machine are noisy, the ratio of interleaved runs much less so. Each pair of runs is also
checked to give the same token ids. With another CPU-heavy job on the machine, 2 threads can
make every small op crawl (a 640-wide LSTM step 50 ms instead of 1 ms, measured 2026-12-03):
compare with --threads 1 before reading anything into a 2-thread ratio.

Models: tiny-en (real weights, espeak-ng speech of 5 s and 30 s), and, unless --no-large, a
random-weight decoder + joint of the Parakeet-TDT 0.6B shape (2-layer LSTM 640, joint 640,
vocabulary 1024, durations [0..4]) on random encoder frames, its blank bias raised so that it
emits some tokens but not on every frame.

    python scripts/bench_decode.py [--runs 15] [--threads 2] [--no-large]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
TINY_EN = REPO / "models" / "data" / "tiny-en.nemo"
#: encoder frames per second after 8x subsampling of 10 ms mel hops
FRAMES_PER_SECOND = 12.5


def random_tdt(vocab: int = 1024, pred_hidden: int = 640, layers: int = 2, joint_hidden: int = 640,
               durations: tuple[int, ...] = (0, 1, 2, 3, 4), max_symbols: int | None = 10,
               blank_bias: float = 0.0, duration0_bias: float = 0.0, seed: int = 0,
               strategy: str = "greedy_batch") -> Any:
    """A stand-in for a TDT model with random weights: NeMo's RNNTDecoder, RNNTJoint and greedy_batch
    RNNTDecoding, and the ``cfg`` keys models/tdt_greedy.py reads. ``blank_bias`` is added to the
    blank logit, ``duration0_bias`` to duration 0's. The encoder output it takes is [1, joint_hidden, T]."""
    from nemo.collections.asr.modules.rnnt import RNNTDecoder, RNNTJoint
    from nemo.collections.asr.parts.submodules.rnnt_decoding import RNNTDecoding, RNNTDecodingConfig
    from omegaconf import OmegaConf

    torch.manual_seed(seed)
    decoder = RNNTDecoder(prednet={"pred_hidden": pred_hidden, "pred_rnn_layers": layers}, vocab_size=vocab,
                          blank_as_pad=True)
    joint = RNNTJoint(jointnet={"encoder_hidden": joint_hidden, "pred_hidden": pred_hidden,
                                "joint_hidden": joint_hidden, "activation": "relu"},
                      num_classes=vocab, num_extra_outputs=len(durations))
    with torch.no_grad():
        out = joint.joint_net[-1]
        out.bias[vocab] += blank_bias
        if 0 in durations:
            out.bias[vocab + 1 + list(durations).index(0)] += duration0_bias
    decoder.eval()
    joint.eval()
    cfg = OmegaConf.merge(OmegaConf.structured(RNNTDecodingConfig),
                          {"strategy": strategy, "model_type": "tdt", "durations": list(durations),
                           "greedy": {"max_symbols_per_step": max_symbols}})
    vocabulary = [chr(0x4E00 + i) for i in range(vocab)]  # one character per token
    decoding = RNNTDecoding(decoding_cfg=cfg, decoder=decoder, joint=joint, vocabulary=vocabulary)
    model_cfg = OmegaConf.create({"decoding": OmegaConf.to_container(cfg)})
    return SimpleNamespace(decoder=decoder, joint=joint, decoding=decoding, cfg=model_cfg)


def nemo_ids(model: Any, encoded: torch.Tensor, length: torch.Tensor) -> list[int]:
    hyps = model.decoding.rnnt_decoder_predictions_tensor(encoder_output=encoded, encoded_lengths=length,
                                                          return_hypotheses=True)
    seq = hyps[0].y_sequence
    return [int(x) for x in (seq.tolist() if hasattr(seq, "tolist") else seq)]


def _speech(seconds: float) -> np.ndarray:
    sys.path.insert(0, str(REPO / "scripts"))
    from tinyen import datasets, speech

    plan = datasets.build_datasets(0, 40, 40, 0)
    texts = [item["text"] for item in plan.heldout_natural + plan.heldout_random]
    pieces, total = [], 0
    gap = np.zeros(int(0.3 * 16000), dtype=np.float32)
    for text in texts:
        pieces += [speech.synth(text, voice="en-us", rate=160, pitch=50).astype(np.float32), gap]
        total += pieces[-2].size + gap.size
        if total >= seconds * 16000:
            break
    return np.concatenate(pieces)[: int(seconds * 16000)]


def _tiny_en_inputs() -> tuple[Any, list[tuple[str, torch.Tensor, torch.Tensor]]]:
    from nemo.collections.asr.models import ASRModel

    cwd = os.getcwd()
    try:
        model = ASRModel.restore_from(str(TINY_EN), map_location="cpu").eval()
    finally:
        os.chdir(cwd)
    clips = []
    for seconds in (5, 30):
        audio = _speech(seconds)
        with torch.inference_mode():
            signal = torch.from_numpy(audio).unsqueeze(0)
            processed, plen = model.preprocessor(input_signal=signal, length=torch.tensor([audio.size]))
            encoded, elen = model.encoder(audio_signal=processed, length=plen)
        clips.append((f"{seconds} s", encoded, elen))
    return model, clips


def _large_inputs(blank_bias: float) -> tuple[Any, list[tuple[str, torch.Tensor, torch.Tensor]]]:
    model = random_tdt(blank_bias=blank_bias)
    gen = torch.Generator().manual_seed(1)
    clips = []
    for seconds in (5, 30):
        frames = int(seconds * FRAMES_PER_SECOND)
        encoded = torch.randn((1, 640, frames), generator=gen)
        clips.append((f"{seconds} s", encoded, torch.tensor([frames])))
    return model, clips


def bench(name: str, model: Any, clips: list[tuple[str, torch.Tensor, torch.Tensor]], runs: int) -> None:
    from ctrlspeak.models import tdt_greedy

    why = tdt_greedy.supports(model)
    assert why is None, why
    params = tdt_greedy.params_of(model)
    for label, encoded, length in clips:
        ours_s, nemo_s = [], []
        want = nemo_ids(model, encoded, length)  # warm-up, and the reference
        for i in range(runs + 1):
            for which in ((0, 1) if i % 2 else (1, 0)):
                t0 = time.perf_counter()
                if which == 0:
                    ids = nemo_ids(model, encoded, length)
                    tdt_greedy.tokens_to_text(model, ids)
                else:
                    ids = tdt_greedy.greedy_tdt(model, encoded, int(length[0]), params)
                    tdt_greedy.tokens_to_text(model, ids)
                elapsed = time.perf_counter() - t0
                if ids != want:
                    raise SystemExit(f"{name} {label}: the decoders disagree ({which=})")
                if i:  # the first pair warms up
                    (nemo_s if which == 0 else ours_s).append(elapsed)
        nemo_m, ours_m = statistics.median(nemo_s), statistics.median(ours_s)
        print(f"{name:<22} {label:>5}  frames {int(length[0]):4d}  tokens {len(want):4d}  "
              f"NeMo {nemo_m * 1000:8.2f} ms  ours {ours_m * 1000:8.2f} ms  ours/NeMo {ours_m / nemo_m:.3f}",
              flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-large", action="store_true", help="skip the 0.6B-shape random decoder")
    ap.add_argument("--blank-bias", type=float, default=1.0,
                    help="added to the random decoder's blank logit (emits on some frames, not all)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from nemo.utils import logging as nemo_logging

    nemo_logging.set_verbosity(nemo_logging.ERROR)
    print(f"torch {torch.__version__}, {args.threads} threads, {args.runs} interleaved runs each, "
          "inference mode, mkldnn off (as the worker decodes)", flush=True)
    with torch.inference_mode(), torch.backends.mkldnn.flags(enabled=False):
        bench("tiny-en", *_tiny_en_inputs(), args.runs)
        if not args.no_large:
            bench("0.6B shape (random)", *_large_inputs(args.blank_bias), args.runs)


if __name__ == "__main__":
    main()
