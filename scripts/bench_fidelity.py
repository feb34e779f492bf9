#!/usr/bin/env python3
"""What the whole daemon path loses against transcribing the same audio directly.

The real ``ctrlspeak run`` on a private virtual desktop (tests/desktop/harness.py: PulseAudio's
virtual microphone, fed in real time), the bundled tiny-en, and tiny-en's held-out 30-90 s
dictations with 0.4-1.5 s pauses. Each dictation goes through the microphone, the daemon's
live segmentation and its joins ``--passes`` times (default 3), interleaved; the same audio
also goes straight to ``ctrlspeak transcribe``. Prints the WER of both against the written
text, per pass and pooled, the difference in points (target: at most 0.5 pooled), and how
often the daemon's text for the same audio differs between passes, with the words that did.
To tell the causes apart it also transcribes the files cut where the daemon cuts, with no
microphone (``transcribe --stream``): segmentation on one side, capture and timing on the other.

Not a timed test, and slow (real time): run it by hand. Usage:
    python scripts/bench_fidelity.py [--long 4] [--passes 3]
"""
from __future__ import annotations

import argparse
import difflib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from tests.desktop.harness import Desktop, private_env, wait_until  # noqa: E402


def _history(env: dict[str, str]) -> list[dict]:
    out = subprocess.run([sys.executable, "-m", "ctrlspeak", "history", "--json", "--limit", "1000"], env=env,
                         capture_output=True, text=True, timeout=60)
    return json.loads(out.stdout)["entries"]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--long", type=int, default=4, help="held-out long dictations (default 4)")
    p.add_argument("--passes", type=int, default=3)
    args = p.parse_args()

    import soundfile as sf

    from ctrlspeak import control
    from tinyen import datasets, scoring, speech

    plan = datasets.build_datasets(0, 0, 0, args.long)
    refs = [it["text"] for it in plan.long]
    audio = [a.astype(np.float32) / 32767.0 for a in speech.synthesize(plan.long, procs=2)]
    daemon_texts: list[list[str]] = [[] for _ in range(args.passes)]
    with tempfile.TemporaryDirectory() as tmp, Desktop() as desktop:
        files = []
        for i, a in enumerate(audio):
            files.append(Path(tmp) / f"long{i}.wav")
            sf.write(files[-1], a, 16000, subtype="PCM_16")
        env = private_env(desktop.env, Path(tmp), CTRLSPEAK_TRAY="false")
        runtime = Path(env["CTRLSPEAK_RUNTIME_DIR"])
        direct = subprocess.run([sys.executable, "-m", "ctrlspeak", "transcribe", "--model", "tiny-en", "--json",
                                 "--progress", "none", *map(str, files)], env=env, capture_output=True, text=True,
                                timeout=1800)
        direct_texts = [r["text"] for r in json.loads(direct.stdout)["results"]]
        # the same files cut where the daemon cuts (its live rule), with no microphone: what
        # is left between this and the daemon is the capture, its timing and the joins
        cut_like = subprocess.run([sys.executable, "-m", "ctrlspeak", "transcribe", "--model", "tiny-en", "--json",
                                   "--stream", "--progress", "none", *map(str, files)], env=env, capture_output=True,
                                  text=True, timeout=1800)
        live_cut_texts = [json.loads(line)["text"] for line in cut_like.stdout.splitlines()
                          if json.loads(line).get("event") == "final"]
        log = open(Path(tmp) / "daemon.log", "wb")
        daemon = subprocess.Popen([sys.executable, "-m", "ctrlspeak", "run", "--model", "tiny-en", "--output",
                                   "stdout", "--no-hotkey"], env=env, stdout=log, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL)
        try:
            sock = runtime / "control.sock"
            os.environ["CTRLSPEAK_RUNTIME_DIR"] = str(runtime)
            wait_until(lambda: sock.exists() and control.request("status", path=sock)["worker_ready"], 300,
                       "the daemon to be ready", interval=0.5)
            done = 0
            for p_i in range(args.passes):
                for a in audio:
                    control.request("start", path=sock)
                    desktop.mic.play(a, lead_s=0.3, tail_s=0.8)
                    desktop.mic.wait_played(timeout=a.size / 16000 + 60)
                    control.request("stop", path=sock)
                    done += 1
                    entries = wait_until(lambda: len(e := _history(env)) >= done and e, 120, "the transcript")
                    daemon_texts[p_i].append(entries[0]["text"])
                    time.sleep(0.5)
        finally:
            daemon.terminate()
            daemon.wait(60)
            log.close()

    words = sum(len(r.split()) for r in refs)
    seconds = sum(a.size for a in audio) / 16000
    d = scoring.error_rates(refs, direct_texts)
    print(f"tiny-en, {len(refs)} held-out dictations ({seconds:.0f} s, {words} words), {args.passes} passes "
          "through the virtual microphone and the daemon:")
    print(f"  direct (ctrlspeak transcribe): WER {100 * d['wer']:.2f} %")
    c = scoring.error_rates(refs, live_cut_texts)
    print(f"  direct, cut where the daemon cuts (transcribe --stream, no microphone): WER {100 * c['wer']:.2f} % "
          f"({100 * (c['wer'] - d['wer']):+.2f} points: what the live rule's shorter segments cost)")
    pooled_refs, pooled_hyps = [], []
    for p_i, hyps in enumerate(daemon_texts):
        r = scoring.error_rates(refs, hyps)
        print(f"  daemon pass {p_i + 1}: WER {100 * r['wer']:.2f} % ({100 * (r['wer'] - d['wer']):+.2f} points)")
        pooled_refs += refs
        pooled_hyps += hyps
    pooled = scoring.error_rates(pooled_refs, pooled_hyps)
    print(f"  daemon pooled: WER {100 * pooled['wer']:.2f} %, {100 * (pooled['wer'] - d['wer']):+.2f} points "
          f"against direct (target: at most +0.50), {100 * (pooled['wer'] - c['wer']):+.2f} against the same cuts")
    same = sum(texts[i] == live_cut_texts[i] for texts in daemon_texts for i in range(len(refs)))
    print(f"  daemon text identical to the same cuts without a microphone: {same} of {len(refs) * args.passes}")
    differ = [i for i in range(len(refs)) if len({texts[i] for texts in daemon_texts}) > 1]
    print(f"  dictations whose daemon text differs between passes: {len(differ)} of {len(refs)}")
    for i in differ:
        variants = sorted({texts[i] for texts in daemon_texts})
        a, b = variants[0].split(), variants[1].split()
        ops = difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes()
        diff = [(" ".join(a[i1:i2]), " ".join(b[j1:j2])) for tag, i1, i2, j1, j2 in ops if tag != "equal"]
        print(f"    #{i}: {len(diff)} place(s), e.g. {diff[:4]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
