#!/usr/bin/env python3
"""Benchmark: our worker path against NeMo's ``transcribe()`` on a WAV path.

Both sides run the same model, the same audio and the same thread count, each in its own
warm spawned process, and the runs are interleaved (A, B, A, B, ...) so that noise on a
shared 2-core machine hits both alike. Times are round trips seen from the parent.

  A  ctrlspeak: float32 array over a multiprocessing queue -> preprocessor -> encoder ->
     greedy decoding, no temp files, no DataLoader.
  B  what the original ctrlspeak did: write the clip to a temporary WAV, then
     ``model.transcribe([path])`` (a Lhotse DataLoader and a manifest per call).

The encoder (preprocessor + encoder forward) and the decode are timed on both sides: ours
from the worker's own timings, NeMo's with forward hooks on its preprocessor and encoder and a
timer around its decoding call.

Usage: python scripts/bench_transcribe.py [--model tiny-en] [--audio FILE] [--seconds 5 30] [--runs 7]
       [--no-sdpa]        (our side without SDPA attention, to see what it is worth)
       [--quantize off|int8]  (our side's encoder; default: the config default, int8. With
                           int8 the "same text" column says whether the text changed)
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent


def _nemo_side(model_path: str, threads: int, inbox, outbox) -> None:
    """Process B: NeMo's own path, as the original ctrlspeak used it."""
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(threads)
    from ctrlspeak.patches.tqdm_lock import apply_tqdm_lock

    apply_tqdm_lock()
    import soundfile as sf
    import torch

    torch.set_num_threads(threads)
    from nemo.collections.asr.models import ASRModel
    from nemo.utils import logging as nemo_logging

    nemo_logging.set_verbosity(nemo_logging.ERROR)
    cwd = os.getcwd()
    model = ASRModel.restore_from(model_path, map_location="cpu")
    os.chdir(cwd)
    model.eval()
    nemo_logging.set_verbosity(nemo_logging.ERROR)
    if "validation_ds" not in model.cfg:  # tiny-en is saved without data configs; transcribe() reads one key
        from omegaconf import open_dict

        with open_dict(model.cfg):
            model.cfg.validation_ds = {"use_start_end_token": False}
    marks: dict[str, float] = {}

    def mark(name):
        def hook(*_):
            marks[name] = time.perf_counter()
        return hook

    model.preprocessor.register_forward_pre_hook(mark("enc0"))
    model.encoder.register_forward_hook(mark("enc1"))
    decoding = model.decoding
    name = "ctc_decoder_predictions_tensor" if hasattr(decoding, "ctc_decoder_predictions_tensor") \
        else "rnnt_decoder_predictions_tensor"
    inner = getattr(decoding, name)

    def timed_decode(*a, **k):
        t = time.perf_counter()
        try:
            return inner(*a, **k)
        finally:
            marks["dec"] = marks.get("dec", 0.0) + time.perf_counter() - t

    setattr(decoding, name, timed_decode)
    outbox.put("ready")
    with tempfile.TemporaryDirectory() as tmp:
        while True:
            audio = inbox.get()
            if audio is None:
                return
            t0 = time.perf_counter()
            path = os.path.join(tmp, "chunk.wav")
            sf.write(path, audio, 16000)
            t1 = time.perf_counter()
            marks.clear()
            hyps = model.transcribe([path], batch_size=1, verbose=False, num_workers=0)
            t2 = time.perf_counter()
            text = hyps[0].text if hasattr(hyps[0], "text") else str(hyps[0])
            outbox.put((text, t1 - t0, t2 - t1, marks["enc1"] - marks["enc0"], marks.get("dec", 0.0)))


def _clip(base: np.ndarray, seconds: float) -> np.ndarray:
    n = int(seconds * 16000)
    reps = int(np.ceil(n / base.size))
    return np.tile(base, reps)[:n].astype(np.float32)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tiny-en")
    parser.add_argument("--audio", default=str(REPO / "models" / "data" / "sample-en.wav"))
    parser.add_argument("--seconds", type=float, nargs="+", default=[5.0, 30.0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-sdpa", action="store_true", help="our side keeps NeMo's manual attention")
    parser.add_argument("--quantize", choices=("off", "int8"), default=None,
                        help="our side's encoder precision (default: the config default)")
    args = parser.parse_args()
    if args.quantize is None:
        from ctrlspeak.config import Config

        args.quantize = Config().quantize

    from ctrlspeak.audio import files as audio_mod
    from ctrlspeak.ipc import WorkerSettings
    from ctrlspeak.models import registry
    from ctrlspeak.supervision.client import WorkerClient

    ref = registry.resolve(args.model)
    model_path = str(registry.cached_path(ref))
    base = audio_mod.load_file(args.audio)

    ctx = multiprocessing.get_context("spawn")
    inbox, outbox = ctx.Queue(), ctx.Queue()
    nemo_proc = ctx.Process(target=_nemo_side, args=(model_path, args.threads, inbox, outbox))
    client = WorkerClient(WorkerSettings(model=ref, threads=args.threads, compute_device="cpu",
                                           sdpa=not args.no_sdpa, quantize=args.quantize))
    nemo_proc.start()
    client.start()
    ready = client.wait_ready(timeout=600)
    assert outbox.get(timeout=600) == "ready"
    print(f"model {ready.model} ({ready.family}), {args.threads} threads, device {ready.device}, "
          f"sdpa {'off' if args.no_sdpa else 'on'}, quantize {args.quantize} on our side, {args.runs} runs interleaved (medians)")
    print(f"{'clip':>5} | {'ours':>8} {'encoder':>8} {'decode':>8} | {'nemo':>8} {'encoder':>8} {'decode':>8}"
          f" {'wav':>6} | {'total':>6} {'encoder':>7} {'decode':>7}  same text")
    print(f"{'':>5} | {'(ms)':>8} {'':>8} {'':>8} | {'(ms)':>8} {'':>8} {'':>8} {'':>6} |"
          f" {'ratio ours/nemo':^23}")
    try:
        for seconds in args.seconds:
            clip = _clip(base, seconds)
            ours, theirs, writes, same = [], [], [], True
            enc_a, dec_a, enc_b, dec_b = [], [], [], []
            for i in range(args.runs + 1):  # the first round is a warm-up, not counted
                t0 = time.perf_counter()
                transcript = client.transcribe(clip, timeout=600)
                t_ours = time.perf_counter() - t0
                t0 = time.perf_counter()
                inbox.put(clip)
                text, t_write, _, t_enc, t_dec = outbox.get(timeout=600)
                t_theirs = time.perf_counter() - t0
                if i:
                    ours.append(t_ours)
                    theirs.append(t_theirs)
                    writes.append(t_write)
                    enc_a.append(transcript.timings.encoder_s)
                    dec_a.append(transcript.timings.decode_s)
                    enc_b.append(t_enc)
                    dec_b.append(t_dec)
                    same &= transcript.text.strip() == text.strip()
            m = statistics.median
            a, b = m(ours), m(theirs)
            ea, da, eb, db = m(enc_a), m(dec_a), m(enc_b), m(dec_b)
            print(f"{seconds:4.0f}s | {a * 1e3:8.1f} {ea * 1e3:8.1f} {da * 1e3:8.1f} | {b * 1e3:8.1f} {eb * 1e3:8.1f}"
                  f" {db * 1e3:8.1f} {m(writes) * 1e3:6.1f} | {a / b:5.2f}x {ea / eb:6.2f}x {da / db if db else 0:6.2f}x"
                  f"  {'yes' if same else 'NO'}")
    finally:
        inbox.put(None)
        client.close()
        nemo_proc.join(30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
