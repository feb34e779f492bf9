"""`ctrlspeak bench` without a model: the table, the numbers, the dictations it plays."""
from __future__ import annotations

import numpy as np
import pytest

from ctrlspeak.cli import build_parser
from ctrlspeak.commands import bench, bench_report
from ctrlspeak.audio.segment import live_rule
from ctrlspeak.audio.vad import make_vad

SR = 16000


def test_format_table_aligns_columns():
    text = bench_report.format_table(["", "p50", "runs"], [["load", "7.31 s", "1"], ["stop to text, 31.8 s", "48 ms", "12"]])
    lines = text.splitlines()
    assert len(lines) == 4
    assert lines[1].split() == ["-" * len("stop to text, 31.8 s"), "------", "----"]
    # first column left-aligned, the others right-aligned: each column ends at the same place
    for cell in ("p50", "7.31 s", "48 ms"):
        ends = {line.index(cell) + len(cell) for line in lines if cell in line}
        assert len(ends) == 1
    assert len(lines[2]) == len(lines[3]) == lines[0].index("runs") + len("runs")
    assert lines[3].startswith("stop to text, 31.8 s")
    assert lines[2].startswith("load ")
    assert all(line == line.rstrip() for line in lines)


def _result() -> bench_report.BenchResult:
    d = bench_report.Dictation
    return bench_report.BenchResult(
        model="tiny-en", device="cpu", threads=2, load_s=7.25,
        rtfx_times={5.0: [0.05, 0.1, 0.05], 30.0: [0.5]},
        dictations={3.36: [d(3.36, 0.100, 0.090, "a"), d(3.36, 0.120, 0.105, "a"), d(3.36, 0.200, 0.150, "a")],
                    31.85: [d(31.85, 0.110, 0.100, "b"), d(31.85, 0.130, 0.120, "b"), d(31.85, 0.140, 0.130, "b")]},
        worker_rss=750 * 2**20, daemon_rss=60 * 2**20)


def test_table_shows_every_figure():
    text = bench_report.table(_result())
    rows = {line.split("  ")[0].strip(): line.split() for line in text.splitlines()[3:]}
    assert text.splitlines()[0] == "ctrlspeak bench: tiny-en on cpu, 2 thread(s)"
    assert rows["load (spawn to ready)"][-3:] == ["7.25", "s", "1"]
    assert rows["warm RTFx, 5 s clip"][-3:] == ["100.0x", "52.6x", "3"]  # p95 of time: the slow end
    assert rows["warm RTFx, 30 s clip"][-3:] == ["60.0x", "60.0x", "1"]
    assert rows["stop to text, 3.4 s dictation"][-5:] == ["120", "ms", "192", "ms", "3"]
    assert rows["stop to text, 31.9 s dictation"][-5:] == ["130", "ms", "139", "ms", "3"]
    assert rows["ratio 31.9 s / 3.4 s"][-2:] == ["1.08", "0.72"]
    # overheads: 10, 15, 50, 10, 10, 10 ms
    assert rows["overhead (stop to text - compute)"][-5:] == ["10", "ms", "41", "ms", "6"]
    assert rows["worker memory (RSS)"][-2:] == ["750", "MB"]
    assert rows["daemon memory (RSS)"][-2:] == ["60", "MB"]


def test_small_times_keep_a_decimal():
    assert bench_report.format_duration(0.0004) == "0.4 ms"
    assert bench_report.format_duration(0.0123) == "12 ms"
    assert bench_report.format_duration(12.34) == "12.3 s"


def test_percentile():
    assert bench_report.percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert bench_report.percentile([1.0, 2.0, 3.0, 4.0, 5.0], 95) == pytest.approx(4.8)
    with pytest.raises(ValueError):
        bench_report.percentile([], 50)


def test_trim_silence_keeps_only_the_speech():
    speech = 0.3 * np.ones(SR, np.float32)
    padded = np.concatenate([np.zeros(SR // 2, np.float32), speech, np.zeros(SR // 4, np.float32)])
    trimmed = bench.trim_silence(padded)
    assert trimmed.size == speech.size and trimmed.min() > 0


def test_dictations_are_cut_at_each_pause_and_the_last_sentence_is_left_for_the_stop():
    """What the latency figures rest on: the daemon's own segmenter (default settings) cuts
    the long dictation at every pause, and the stop comes before the last pause is long
    enough to cut at, so the last segment is transcribed after the stop."""
    sentences = bench.load_sentences()
    assert sentences and all(s.size > SR for s in sentences)
    for seconds, count in ((3.0, 1), (30.0, 9)):
        audio = bench.dictation(sentences, seconds)
        assert abs(audio.size / SR - seconds) < 2.5
        segmenter = live_rule(min_silence_s=0.5, max_segment_s=20.0).segmenter(make_vad())  # the daemon's defaults
        cut = [seg for block in np.array_split(audio, audio.size // 320) for seg in segmenter.feed(block)]
        rest = segmenter.flush()
        assert len(cut) == count - 1, f"{seconds} s: {len(cut)} segments cut while speaking"
        assert rest is not None and rest.size / SR > 2.0, "the last sentence waits for the stop"
        assert float(np.abs(rest).max()) > 0.1


def test_dictation_is_deterministic():
    sentences = bench.load_sentences()
    np.testing.assert_array_equal(bench.dictation(sentences, 30.0), bench.dictation(sentences, 30.0))


def test_bench_is_a_command():
    args = build_parser().parse_args(["bench", "--quick", "--model", "tiny-en", "--runs", "4", "-q"])
    assert args.func is bench.run
    assert (args.quick, args.model, args.runs, args.quiet) == (True, "tiny-en", 4, True)


def test_runs_must_be_positive():
    from ctrlspeak import config, errors

    with pytest.raises(errors.UsageError):
        bench.run_bench(config.Config(model="tiny-en"), runs=0)


