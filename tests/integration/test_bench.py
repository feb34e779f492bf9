"""`ctrlspeak bench --quick` with the bundled tiny-en: the real daemon, a real spawned worker,
dictations played by the file source at real-time pacing. Timings are noisy on a small
machine, so only their sanity is checked, never their size; the transcripts are exact."""
from __future__ import annotations

from pathlib import Path

import pytest

from ctrlspeak import config
from ctrlspeak.commands import bench, bench_report

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def _cells(table: str, label: str) -> list[str]:
    rows = [line for line in table.splitlines() if line.startswith(label)]
    assert len(rows) == 1, f"no single row {label!r} in\n{table}"
    return rows[0][len(label):].split()


def test_quick_bench_with_tiny_en(isolated_env, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    runtime = isolated_env / "run"
    monkeypatch.setenv("CTRLSPEAK_RUNTIME_DIR", str(runtime))  # where a running daemon's socket would be
    said: list[str] = []
    result = bench.run_bench(config.load({"model": "tiny-en"}), quick=True, say=said.append)

    assert result.model == "tiny-en" and result.threads >= 1
    assert result.load_s > 0
    assert set(result.rtfx_times) == {5.0, 30.0}
    assert all(len(t) == 1 and t[0] > 0 for t in result.rtfx_times.values())

    sentence = (REPO / "models" / "data" / "sample-en.txt").read_text().strip()
    short, long = sorted(result.dictations)
    assert 3.0 < short < 4.0 and 9.0 < long < 15.0
    for seconds, runs in result.dictations.items():
        assert len(runs) == 1
        run = runs[0]
        assert run.latency_s > 0
        # the stop comes before the last pause is long enough to cut at: the last segment
        # is always transcribed after it, and only that part of its compute is counted
        assert 0 < run.compute_s <= run.latency_s
        sentences = round((seconds - bench.LEAD_S) / 3.6)  # 2.76 s of speech + 0.6-1.0 s pauses
        words = " ".join([sentence] * sentences)
        # as the text pipeline writes it by default for a model without capitals or punctuation
        assert run.text == words[0].upper() + words[1:] + ".", f"{seconds} s dictation"

    assert result.worker_rss > 100 * 2**20
    assert result.daemon_rss > 10 * 2**20

    table = bench_report.table(result)
    assert _cells(table, "load (spawn to ready)")[-1] == "1"
    for label in ("warm RTFx, 5 s clip", "warm RTFx, 30 s clip"):
        assert float(_cells(table, label)[0].rstrip("x")) > 0
    for seconds in (short, long):
        p50 = _cells(table, f"stop to text, {seconds:.1f} s dictation")
        assert float(p50[0]) > 0 and p50[1] in ("ms", "s")
    assert float(_cells(table, f"ratio {long:.1f} s / {short:.1f} s")[0]) > 0
    assert _cells(table, "overhead (stop to text - compute)")[-1] == "2"

    # nothing of the person's: no history, no journal, no socket where a daemon's would be
    for sub in ("data", "state"):
        assert not any((isolated_env / sub).rglob("*")), f"bench wrote into XDG {sub} dir"
    assert not runtime.exists()
    assert any("warm-up" in line for line in said)
