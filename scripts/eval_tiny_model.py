#!/usr/bin/env python3
"""Evaluate a model on the tiny-en held-out sets through the real CLI.

The held-out sets are the ones ``train_tiny_model.py`` reserved (same seed, never trained on):
natural sentences from a separate grammar and written by hand, random word sequences, and
30-90 s dictations of held-out sentences with 0.4-1.5 s pauses. They are spoken with espeak-ng
(voices en-us, en-gb, en-gb-x-rp, en-gb-scotland, en-029; rate 140-190; pitch 30-70), written
as 16 kHz WAV files, and transcribed by ONE run of ``ctrlspeak transcribe --model MODEL
--json`` (the spawned worker, daemon-side resampling, long files cut at pauses). Prints
WER/CER for each set, the homophone-aware WER, and for the dictations the words dropped at
the start, middle or end.

With ``--compare KEY=VALUE`` (a config key, e.g. ``quantize=off`` or ``sdpa=false``) the
same audio is transcribed a second time with ``CTRLSPEAK_KEY=VALUE``: both sets of figures
are printed, with how many transcripts changed. This is how an option that can change the
text is measured before it becomes a default.

Usage: python scripts/eval_tiny_model.py [--model tiny-en] [--natural 400] [--random 400]
       [--long 6] [--compare KEY=VALUE] [--report tiny-en.json]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import soundfile as sf

from tinyen import datasets, speech
from tinyen.scoring import canonical, dropped_words, error_rates, homophones, normalize_text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tiny-en")
    parser.add_argument("--natural", type=int, default=400, help="held-out natural sentences")
    parser.add_argument("--random", type=int, default=400, help="held-out random word sequences")
    parser.add_argument("--long", type=int, default=6, help="held-out 30-90 s dictations")
    parser.add_argument("--seed", type=int, default=datasets.SEED)
    parser.add_argument("--compare", metavar="KEY=VALUE", help="also run with CTRLSPEAK_KEY=VALUE and compare")
    parser.add_argument("--report", type=Path, help="add the figures to this JSON report (tiny-en.json)")
    args = parser.parse_args(argv)
    runs: list[tuple[str, dict[str, str]]] = [("as configured", {})]
    if args.compare:
        key, _, value = args.compare.partition("=")
        runs.append((args.compare, {"CTRLSPEAK_" + key.upper(): value}))

    plan = datasets.build_datasets(0, args.natural, args.random, args.long, args.seed)
    sets = {"natural": plan.heldout_natural, "random": plan.heldout_random, "long": plan.long}
    items = [it for group in sets.values() for it in group]
    audio = speech.synthesize(items)
    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for i, a in enumerate(audio):
            path = Path(tmp) / f"{i:04d}.wav"
            sf.write(path, a, speech.SR, subtype="PCM_16")
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
    all_hyps, figures = [], {}
    for label, doc in docs:
        if len(docs) > 1:
            print(f"== {label}")
        hyps = [normalize_text(r.get("text", "")) for r in doc["results"]]
        all_hyps.append(hyps)
        figures[label] = _report(doc, sets, audio, hyps)
    if len(all_hyps) > 1:
        changed = sum(a != b for a, b in zip(*all_hyps))
        print(f"== {changed} of {len(all_hyps[0])} transcripts differ between the two runs")
    if args.report:
        report = json.loads(args.report.read_text()) if args.report.is_file() else {}
        report["through_cli"] = figures["as configured"]
        args.report.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    return 0


def _report(doc, sets, audio, hyps) -> dict:
    print(f"model {doc['model']} ({doc['family']}, {doc['dtype']}) through `ctrlspeak transcribe`, "
          f"worker ready in {doc['worker']['start_s']:.1f} s")
    canon = homophones()
    out: dict = {"worker_start_s": doc["worker"]["start_s"], "family": doc["family"]}
    start = 0
    for name, items in sets.items():
        refs = [it["text"] for it in items]
        got = hyps[start:start + len(items)]
        seconds = [a.size / speech.SR for a in audio[start:start + len(items)]]
        start += len(items)
        er = error_rates(refs, got)
        same = error_rates([canonical(r, canon) for r in refs], [canonical(h, canon) for h in got])
        out[name] = {"utterances": len(refs), "words": er["words"], "wer": er["wer"], "cer": er["cer"],
                     "wer_homophones_equal": same["wer"]}
        print(f"{name:8s} {len(refs):4d} utterances ({min(seconds):.0f}-{max(seconds):.0f} s)  words "
              f"{er['words']:5d}  WER {100 * er['wer']:5.2f} %  CER {100 * er['cer']:5.2f} %  "
              f"(homophones equal: WER {100 * same['wer']:5.2f} %)")
        if name == "long":
            out[name]["dropped"] = []
            for ref, hyp, sec in zip(refs, got, seconds):
                dropped = dropped_words(ref, hyp)
                out[name]["dropped"].append(dropped)
                print(f"  {sec:5.1f} s: dropped at start {dropped['start'] or '-'}, middle "
                      f"{dropped['middle'] or '-'}, end {dropped['end'] or '-'}")
    print(f"  ({len(set(canon.values()))} groups of words espeak-ng says identically: to/two, by/buy/bye, ...)")
    return out


if __name__ == "__main__":
    sys.exit(main())
