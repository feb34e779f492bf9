#!/usr/bin/env python3
"""Evaluate a model on the tiny-en held-out set through the real CLI.

The held-out sentences and long utterances are the ones ``train_tiny_model.py`` reserved
(same seed, drawn before any training sentence, never trained on). They are spoken with
espeak-ng (voices en-us, en-gb, en-gb-x-rp, en-gb-scotland, en-029; rate 140-190; pitch
30-70), written as 16 kHz WAV files, and transcribed by ONE run of
``ctrlspeak transcribe --model MODEL --json`` (the spawned worker, daemon-side resampling,
splitting of long files at pauses). Prints WER/CER and, for the long utterances, any
words dropped at the start, middle or end.

With ``--compare KEY=VALUE`` (a config key, e.g. ``quantize=off`` or ``sdpa=false``) the
same audio is transcribed a second time with ``CTRLSPEAK_KEY=VALUE``: both sets of figures
are printed, with how many transcripts changed. This is how an option that can change the
text is measured before it becomes a default.

Usage: python scripts/eval_tiny_model.py [--model tiny-en] [--sentences 400] [--long 4] [--compare KEY=VALUE]
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

HERE = Path(__file__).resolve().parent


def _trainer():
    spec = importlib.util.spec_from_file_location("train_tiny_model", HERE / "train_tiny_model.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # the synthesis pool pickles its worker function by module name
    spec.loader.exec_module(module)
    return module


def _long_audio(trainer, item: dict) -> np.ndarray:
    parts = []
    voice = {k: item[k] for k in ("voice", "rate", "pitch")}
    for i, text in enumerate(item["texts"]):
        parts.append(trainer.synth(text, **voice))
        if i < len(item["gaps"]):
            parts.append(np.zeros(int(item["gaps"][i] * 16000), np.float32))
    return np.concatenate(parts)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tiny-en")
    parser.add_argument("--sentences", type=int, default=400, help="held-out sentences (the trainer reserved 400)")
    parser.add_argument("--long", type=int, default=4, help="long multi-sentence utterances (the trainer reserved 4)")
    parser.add_argument("--compare", metavar="KEY=VALUE", help="also run with CTRLSPEAK_KEY=VALUE and compare")
    args = parser.parse_args()
    runs: list[tuple[str, dict[str, str]]] = [("as configured", {})]
    if args.compare:
        key, _, value = args.compare.partition("=")
        runs.append((args.compare, {"CTRLSPEAK_" + key.upper(): value}))

    trainer = _trainer()
    _, heldout, long_items = trainer.build_datasets(0, args.sentences, args.long)
    short_audio = trainer.synthesize(heldout)
    long_audio = [_long_audio(trainer, item) for item in long_items]
    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for i, audio in enumerate([*short_audio, *long_audio]):
            path = Path(tmp) / f"{i:04d}.wav"
            sf.write(path, audio, 16000, subtype="PCM_16")
            files.append(str(path))
        docs = []
        for label, env in runs:
            out = subprocess.run([sys.executable, "-m", "ctrlspeak", "transcribe", "--model", args.model,
                                  "--json", "--progress", "none", *files], capture_output=True, text=True,
                                 env={**os.environ, **env})
            if out.returncode != 0:
                print(out.stderr, file=sys.stderr)
                return out.returncode
            docs.append((label, json.loads(out.stdout)))
    all_hyps = []
    for label, doc in docs:
        if len(docs) > 1:
            print(f"== {label}")
        hyps = [trainer.normalize_text(r.get("text", "")) for r in doc["results"]]
        all_hyps.append(hyps)
        _report(trainer, doc, heldout, long_items, long_audio, hyps)
    if len(all_hyps) > 1:
        changed = sum(a != b for a, b in zip(*all_hyps))
        print(f"== {changed} of {len(all_hyps[0])} transcripts differ between the two runs")
    return 0


def _report(trainer, doc, heldout, long_items, long_audio, hyps) -> None:
    refs_short = [item["text"] for item in heldout]
    refs_long = [item["text"] for item in long_items]
    short = trainer.error_rates(refs_short, hyps[: len(heldout)])
    long = trainer.error_rates(refs_long, hyps[len(heldout):])
    print(f"model {doc['model']} ({doc['family']}) through `ctrlspeak transcribe`, worker ready in "
          f"{doc['worker']['start_s']:.1f} s")
    print(f"held-out sentences: {len(heldout):4d}  words {short['words']:5d}  "
          f"WER {100 * short['wer']:5.2f} %  CER {100 * short['cer']:5.2f} %")
    canon = trainer.homophones()
    same = trainer.error_rates([trainer.canonical(r, canon) for r in refs_short],
                               [trainer.canonical(h, canon) for h in hyps[: len(heldout)]])
    groups = len(set(canon.values()))
    print(f"  the same, counting the {groups} groups of words espeak-ng says identically "
          f"(to/two, by/buy/bye, ...) as equal: WER {100 * same['wer']:5.2f} %")
    durations = [a.size / 16000 for a in long_audio]
    print(f"long utterances:    {len(long_items):4d}  words {long['words']:5d}  "
          f"WER {100 * long['wer']:5.2f} %  CER {100 * long['cer']:5.2f} %  "
          f"({min(durations):.0f}-{max(durations):.0f} s each)")
    for ref, hyp, seconds in zip(refs_long, hyps[len(heldout):], durations):
        dropped = trainer.dropped_words(ref, hyp)
        print(f"  {seconds:5.1f} s: dropped at start {dropped['start'] or '-'}, middle {dropped['middle'] or '-'}, "
              f"end {dropped['end'] or '-'}")


if __name__ == "__main__":
    sys.exit(main())
