"""The onnx-asr half of scripts/bench_peer.py. It runs under .cache/peer-venv's python (onnx-asr,
onnxruntime, onnx), never under ctrlspeak's environment, so it imports nothing from the project.

  prepare DIR   DIR/raw holds NeMo's export: write DIR/encoder-model.onnx (its loose external
                tensors merged into one encoder-model.onnx.data when NeMo wrote any, i.e. over
                2 GB) and DIR/decoder_joint-model.onnx, then both *.int8.onnx (dynamic int8).
  serve DIR     load the folder with onnx_asr.load_model, print one JSON line when ready, then
                answer JSON lines on stdin: {"clip": "x.npy"} -> {"text", "encoder_s", "decode_s"}.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

GRAPHS = ("encoder-model", "decoder_joint-model")


def prepare(folder: Path) -> None:
    import logging

    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    logging.getLogger().setLevel(logging.ERROR)  # quantize_dynamic's advice to pre-process, each graph
    raw = folder / "raw"
    loose = {p.name for p in raw.iterdir()} - {f"{g}.onnx" for g in GRAPHS}
    for graph in GRAPHS:
        src, dst = raw / f"{graph}.onnx", folder / f"{graph}.onnx"
        if graph == "encoder-model" and loose:  # protobuf stops at 2 GB: the tensors go in one side file
            model = onnx.load(str(src), load_external_data=True)
            onnx.save_model(model, str(dst), save_as_external_data=True, all_tensors_to_one_file=True,
                            location=f"{graph}.onnx.data")
            del model
        else:
            os.replace(src, dst)
    shutil.rmtree(raw)
    for graph in GRAPHS:
        print(f"  quantising {graph} to int8", flush=True)
        quantize_dynamic(folder / f"{graph}.onnx", folder / f"{graph}.int8.onnx", weight_type=QuantType.QInt8,
                         op_types_to_quantize=["MatMul", "Gemm"])


def _plain_log_mel(pre):
    """onnx-asr's NeMo features without their per-feature normalisation, which onnx-asr always
    applies: for a model trained with ``normalize: NA`` (tiny-en), so that its text can be compared."""
    import numpy as np

    def features(waveforms, lens):
        w = waveforms - pre._preemph * np.pad(waveforms, ((0, 0), (1, 0)))[:, :-1]
        w[np.arange(w.shape[-1]) >= lens[:, None]] = 0
        w = np.pad(w, ((0, 0), (pre._n_fft // 2, pre._n_fft // 2)))
        frames = np.lib.stride_tricks.sliding_window_view(w, pre._n_fft, axis=1)[:, :: pre._hop_length]
        side = (pre._n_fft - pre._win_length) // 2
        spec = np.abs(np.fft.rfft(frames * np.pad(np.hanning(pre._win_length), (side, side)), pre._n_fft)) ** 2
        mel = np.log(np.matmul(spec.astype(np.float32), pre._melscale_fbanks) + pre._log_zero_guard_value)
        flens = lens // pre._hop_length
        mel[np.arange(mel.shape[1])[None, :] >= flens[:, None]] = 0
        return mel.transpose(0, 2, 1).astype(np.float32), flens

    return features


def serve(folder: Path, quantization: str | None, threads: int, normalize: bool) -> None:
    t0 = time.perf_counter()
    import numpy as np
    import onnx_asr
    import onnxruntime as rt

    import_s = time.perf_counter() - t0
    opts = rt.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    model = onnx_asr.load_model("nemo-conformer-tdt", folder, quantization=quantization, sess_options=opts,
                                providers=["CPUExecutionProvider"])
    load_s = time.perf_counter() - t0
    asr = model.asr
    if not normalize:
        asr._preprocessor = _plain_log_mel(asr._preprocessor)
    marks = {"encoder_s": 0.0, "decode_s": 0.0}
    preprocess, encode, decoding = asr._preprocessor, asr._encode, asr._decoding
    started = [0.0]

    def timed_preprocess(*a):  # "encoder" is preprocessor + encoder, as ctrlspeak's worker times it
        started[0] = time.perf_counter()
        return preprocess(*a)

    def timed_encode(*a):
        try:
            return encode(*a)
        finally:
            marks["encoder_s"] = time.perf_counter() - started[0]

    def timed_decoding(*a, **k):
        # _decoding is a generator that recognize() drains lazily; drain it here to time the TDT loop
        t = time.perf_counter()
        out = list(decoding(*a, **k))
        marks["decode_s"] = time.perf_counter() - t
        return iter(out)

    asr._preprocessor, asr._encode, asr._decoding = timed_preprocess, timed_encode, timed_decoding
    print(json.dumps({"ready": True, "import_s": import_s, "load_s": load_s}), flush=True)
    clips: dict[str, object] = {}
    for line in sys.stdin:
        path = json.loads(line)["clip"]
        if path not in clips:
            clips[path] = np.load(path)
        text = model.recognize(clips[path], sample_rate=16000)
        print(json.dumps({"text": text, **marks}), flush=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("mode", choices=("prepare", "serve"))
    p.add_argument("folder", type=Path)
    p.add_argument("--quantization", choices=("none", "int8"), default="none")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--no-normalize", action="store_true", help="features without per-feature normalisation")
    a = p.parse_args()
    if a.mode == "prepare":
        prepare(a.folder)
    else:
        serve(a.folder, None if a.quantization == "none" else a.quantization, a.threads, not a.no_normalize)
    return 0


if __name__ == "__main__":
    sys.exit(main())
