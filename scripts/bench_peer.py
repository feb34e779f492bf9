#!/usr/bin/env python3
"""Benchmark: ctrlspeak's worker against onnx-asr (fp32 and int8) on the same NeMo TDT model.

The model (default: bench_cold_start.py's random-weight Parakeet-TDT-0.6B shape, built into
.cache/bench/ if missing) is exported once with NeMo's ``export()`` into the folder onnx-asr reads
for ``nemo-conformer-tdt`` (encoder-model.onnx, decoder_joint-model.onnx, their *.int8.onnx from
onnxruntime's dynamic quantisation, vocab.txt, config.json) in .cache/peer/<sha256 of the .nemo>/.
onnx-asr runs as scripts/peer_side.py under its own venv, .cache/peer-venv (made on first use;
never a ctrlspeak dependency).

Each run spawns every side afresh, in turn (ctrlspeak's real worker with a warm weights cache and
the ``--quantize`` encoder, onnx-asr fp32, onnx-asr int8), same threads, same samples (onnx-asr gets
each clip as the worker's ``settle_edges`` leaves it, so the texts compare). Per side: spawn ->
ready as the parent sees it (ctrlspeak's ready follows its own warm-up transcription, onnx-asr's
is ``load_model`` returning) and peak RSS (VmHWM) then; an unmeasured pass over the 5 s and 30 s
clips, a measured one (round trip, preprocessor + encoder, the TDT decode alone); peak RSS after.
Run 0 warms the caches and is not counted. Medians come with every ratio ctrlspeak / onnx-asr and
issue 16's targets (against int8).

Usage: python scripts/bench_peer.py [--model PATH.nemo] [--runs 3] [--threads 2] [--quantize off|int8]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))
import bench_cold_start as cold  # noqa: E402
import bench_transcribe  # noqa: E402

PEER_VENV = REPO / ".cache" / "peer-venv"
PEER_PY = PEER_VENV / "bin" / "python"
PEER_SIDE = REPO / "scripts" / "peer_side.py"
SIDES = ("ctrlspeak", "onnx fp32", "onnx int8")
SECONDS = (5, 30)
#: issue 16's targets for ctrlspeak / onnx-asr int8
TARGETS = {"transcribe": 0.8, "decode": 1.0, "ready": 1.0, "rss": 1.0}


def vocab_text(tokenizer) -> str:
    """vocab.txt as onnx-asr reads it: ``piece id`` per line, the blank (id = vocab size) last."""
    pieces = tokenizer.ids_to_tokens(list(range(tokenizer.vocab_size)))
    if any(" " in p for p in pieces):  # onnx-asr splits each line on its one space
        raise ValueError("a tokenizer piece contains a space")
    return "".join(f"{p} {i}\n" for i, p in enumerate(pieces)) + f"<blk> {len(pieces)}\n"


def peer_config(cfg) -> dict:
    """config.json for onnx-asr's nemo-conformer-tdt, from the model's config (``model.cfg``)."""
    durations = list(cfg["decoding"]["durations"])
    if durations != list(range(len(durations))):  # onnx-asr takes the duration's index as the step
        raise ValueError(f"onnx-asr assumes TDT durations 0..n-1, the model has {durations}")
    return {"model_type": "nemo-conformer-tdt", "features_size": int(cfg["preprocessor"]["features"]),
            "subsampling_factor": int(cfg["encoder"]["subsampling_factor"]),
            "max_tokens_per_step": int(cfg["decoding"]["greedy"]["max_symbols"])}


def verdict(ratio: float, target: float | None) -> str:
    return "" if target is None else f"<= {target:.2f} {'ok' if ratio <= target else 'MISSED'}"


def format_row(label: str, values: list[float], target: float | None, scale: float = 1.0, fmt: str = "9.1f") -> str:
    """One table row: the three sides' medians (times ``scale``), both ratios, the target for /int8."""
    ours, fp32, int8 = values
    cells = "".join(f"{v * scale:{fmt}}" for v in values)
    return f"{label:<24}{cells}{ours / fp32:9.2f}{ours / int8:9.2f}  {verdict(ours / int8, target)}".rstrip()


def sha256_of(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _export(model_path: str, folder: str) -> None:
    """In a spawned process, so that NeMo and the model leave with it: NeMo's ONNX export into
    FOLDER/raw (peer_side.py prepare finishes it), vocab.txt, config.json, and what serve needs."""
    from nemo.collections.asr.models import ASRModel
    from nemo.utils import logging as nemo_logging

    nemo_logging.set_verbosity(nemo_logging.ERROR)  # the export's tracer warnings hide the progress lines
    out, cwd = Path(folder), os.getcwd()
    try:
        model = ASRModel.restore_from(model_path, map_location="cpu").eval()
    finally:
        os.chdir(cwd)  # restore_from may leave the cwd in its temporary folder
    config = peer_config(model.cfg)  # first, so that an unsupported model fails before the slow part
    (out / "raw").mkdir(parents=True, exist_ok=True)
    model.export(str(out / "raw" / "model.onnx"))
    (out / "vocab.txt").write_text(vocab_text(model.tokenizer), encoding="utf-8")
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    (out / "normalize").write_text(str(model.cfg["preprocessor"].get("normalize")), encoding="utf-8")


def ensure_peer_venv() -> None:
    probe = [str(PEER_PY), "-c", "import onnx_asr, onnxruntime, onnx"]
    if PEER_PY.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return
    print(f"installing onnx-asr into {PEER_VENV} ...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
    # onnx only for the export's merge and quantisation (onnx-asr itself does not import it)
    subprocess.run([str(PEER_PY), "-m", "pip", "install", "-q", "onnx-asr", "onnxruntime", "numpy", "onnx"], check=True)


def ensure_export(model: Path) -> Path:
    folder = REPO / ".cache" / "peer" / sha256_of(model)[:16]
    if (folder / "done").exists():
        return folder
    shutil.rmtree(folder, ignore_errors=True)  # a half-made export from an interrupted run
    print(f"exporting {model.name} to ONNX in {folder} ...", flush=True)
    t0 = time.perf_counter()
    proc = multiprocessing.get_context("spawn").Process(target=_export, args=(str(model), str(folder)))
    proc.start()
    proc.join()
    if proc.exitcode:
        raise SystemExit(f"the export failed (exit {proc.exitcode})")
    print(f"exported in {time.perf_counter() - t0:.0f} s; merging and quantising to int8 ...", flush=True)
    subprocess.run([str(PEER_PY), str(PEER_SIDE), "prepare", str(folder)], check=True)
    (folder / "done").touch()
    print(f"export ready in {time.perf_counter() - t0:.0f} s", flush=True)
    return folder


class Ctrlspeak:
    """ctrlspeak's real spawned worker, as the daemon starts it."""

    def __init__(self, model: Path, threads: int, cache_dir: str, quantize: str):
        from ctrlspeak.ipc import ModelRef, WorkerSettings
        from ctrlspeak.supervision.client import WorkerClient

        self.client = WorkerClient(WorkerSettings(model=ModelRef(model.stem, "file", path=str(model)),
                                                  threads=threads, compute_device="cpu",
                                                  weights_cache_dir=cache_dir, quantize=quantize))
        t0 = time.perf_counter()
        self.client.start()
        self.client.wait_ready(timeout=900)
        self.ready_s = time.perf_counter() - t0
        self.pid = self.client.pid
        self.rss = cold._peak_rss(self.pid)

    def transcribe(self, audio: np.ndarray, _path: Path) -> tuple[float, float, float, str]:
        t0 = time.perf_counter()
        t = self.client.transcribe(audio, timeout=600)
        return time.perf_counter() - t0, t.timings.encoder_s, t.timings.decode_s, t.text

    def close(self) -> None:
        self.client.close(timeout=30)


class Peer:
    """onnx-asr in a subprocess of its own venv (scripts/peer_side.py serve)."""

    def __init__(self, folder: Path, quantization: str, threads: int, normalize: bool):
        env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads))  # numpy's BLAS too
        cmd = [str(PEER_PY), str(PEER_SIDE), "serve", str(folder), "--quantization", quantization,
               "--threads", str(threads)] + ([] if normalize else ["--no-normalize"])
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        if not json.loads(self.proc.stdout.readline() or "{}").get("ready"):
            raise SystemExit(f"onnx-asr ({quantization}) did not start")
        self.ready_s = time.perf_counter() - t0
        self.pid = self.proc.pid
        self.rss = cold._peak_rss(self.pid)

    def transcribe(self, _audio: np.ndarray, path: Path) -> tuple[float, float, float, str]:
        t0 = time.perf_counter()
        self.proc.stdin.write(json.dumps({"clip": str(path)}) + "\n")
        self.proc.stdin.flush()
        reply = json.loads(self.proc.stdout.readline())
        return time.perf_counter() - t0, reply["encoder_s"], reply["decode_s"], reply["text"]

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(30)


def measure(start: dict, clips: dict, paths: dict, runs: int) -> tuple[dict, dict]:
    """Interleaved runs: per run, each side spawned in turn, then both clips. Returns each side's
    lists of figures (run 0 left out) and the last texts."""
    got: dict[str, dict[str, list[float]]] = {side: {} for side in SIDES}
    texts: dict[tuple[str, int], str] = {}
    for run in range(runs + 1):  # run 0 warms the caches and is not counted
        for side in SIDES:
            proc = start[side]()
            try:
                for s in SECONDS:  # unmeasured: onnxruntime sizes its buffers on a session's first runs
                    proc.transcribe(clips[s], paths[s])
                row = {"ready": proc.ready_s, "rss": proc.rss}
                for s in SECONDS:
                    row[f"total {s}"], row[f"encoder {s}"], row[f"decode {s}"], texts[side, s] = \
                        proc.transcribe(clips[s], paths[s])
                row["rss after"] = cold._peak_rss(proc.pid)
            finally:
                proc.close()
            if run:
                for key, value in row.items():
                    got[side].setdefault(key, []).append(value)
            print(f"run {run}{' (warm-up)' if not run else ''} {side:<9}: ready {row['ready']:5.1f} s, "
                  f"RSS {row['rss'] / 2**30:.2f} GiB, " + ", ".join(
                      f"{s} s {row[f'total {s}'] * 1e3:.0f} ms" for s in SECONDS), flush=True)
    return got, texts


def report(got: dict, texts: dict) -> None:
    med = {side: {k: statistics.median(v) for k, v in got[side].items()} for side in SIDES}

    def row(label: str, key: str, target: str | None, scale: float = 1e3, fmt: str = "9.1f") -> None:
        print(format_row(label, [med[side][key] for side in SIDES], TARGETS.get(target), scale, fmt))

    print(f"{'':<24}{'ctrlspeak':>9}{'fp32':>9}{'int8':>9}{'/fp32':>9}{'/int8':>9}  target")
    for label, key, target in (("transcribe", "total", "transcribe"), ("  encoder", "encoder", None),
                               ("  TDT decode", "decode", "decode")):
        for s in SECONDS:
            row(f"{label} {s} s (ms)", f"{key} {s}", target)
    row("start to ready (s)", "ready", "ready", 1.0, "9.2f")
    row("peak RSS at ready (GiB)", "rss", "rss", 1 / 2**30, "9.2f")
    row("  after the clips (GiB)", "rss after", None, 1 / 2**30, "9.2f")
    for s in SECONDS:
        same = [("yes" if texts[side, s].strip() == texts["ctrlspeak", s].strip() else "NO") for side in SIDES[1:]]
        print(f"same text as ctrlspeak, {s} s clip: onnx fp32 {same[0]}, onnx int8 {same[1]}")
        for side in SIDES if "NO" in same else ():
            print(f"  {side:<9}: {texts[side, s].strip()[:100]!r}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", type=Path, default=cold.DEFAULT_MODEL)
    p.add_argument("--audio", type=Path, default=REPO / "models" / "data" / "sample-en.wav")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--quantize", choices=("off", "int8"), default=None,
                   help="ctrlspeak's encoder (default: the config default)")
    a = p.parse_args(argv)
    from ctrlspeak.audio import files
    from ctrlspeak.audio.segment import settle_edges
    from ctrlspeak.config import Config

    a.quantize = a.quantize or Config().quantize
    if not a.model.is_file():
        print(f"building {a.model} ...", flush=True)
        cold.build_parakeet_shape(a.model)
    ensure_peer_venv()
    folder = ensure_export(a.model)
    normalize = (folder / "normalize").read_text() == "per_feature"
    base = files.load_file(a.audio)
    clips = {s: bench_transcribe._clip(base, s) for s in SECONDS}
    paths = {s: folder / f"clip-{s}s.npy" for s in SECONDS}
    for s in SECONDS:  # onnx-asr gets the samples ctrlspeak's model sees: the worker settles the edges first
        np.save(paths[s], settle_edges(clips[s]))
    weights = tempfile.mkdtemp(prefix="ctrlspeak-bench-weights-")
    start = {"ctrlspeak": lambda: Ctrlspeak(a.model, a.threads, weights, a.quantize),
             "onnx fp32": lambda: Peer(folder, "none", a.threads, normalize),
             "onnx int8": lambda: Peer(folder, "int8", a.threads, normalize)}
    try:
        got, texts = measure(start, clips, paths, a.runs)
    finally:
        shutil.rmtree(weights, ignore_errors=True)
    print(f"\n{a.model.name}, {a.threads} threads, ctrlspeak encoder {a.quantize}, medians of {a.runs} "
          f"interleaved runs; ratios are ctrlspeak / onnx-asr, the targets are against int8")
    report(got, texts)
    if not normalize:
        print("(the model has no per-feature normalisation, which onnx-asr always applies: onnx-asr's features "
              "were made without it)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
