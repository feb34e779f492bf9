"""What ``ctrlspeak bench`` prints: its results (:class:`BenchResult`, one :class:`Dictation`
per run), their percentiles, and the aligned table.

Pure functions of the numbers :mod:`ctrlspeak.commands.bench` measures, so tests check the
table without a model; numpy loads when a percentile is asked for.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field


def percentile(values: Sequence[float], q: float) -> float:
    import numpy as np

    if not values:
        raise ValueError("no values")
    return float(np.percentile(np.asarray(values, dtype=float), q))


@dataclass(frozen=True)
class Dictation:
    audio_s: float
    #: the stop command to the text at the cursor (the done event's latency_s)
    latency_s: float
    #: the worker's compute that latency_s waited for (the done event's compute_s)
    compute_s: float
    text: str

    @property
    def overhead_s(self) -> float:
        return self.latency_s - self.compute_s


@dataclass
class BenchResult:
    model: str
    device: str
    threads: int
    load_s: float
    #: clip seconds -> round-trip times of the timed passes
    rtfx_times: dict[float, list[float]] = field(default_factory=dict)
    #: dictation length (s) -> its runs
    dictations: dict[float, list[Dictation]] = field(default_factory=dict)
    worker_rss: int = 0
    daemon_rss: int = 0

    def latencies(self, seconds: float) -> list[float]:
        return [d.latency_s for d in self.dictations[seconds]]

    def overheads(self) -> list[float]:
        return [d.overhead_s for runs in self.dictations.values() for d in runs]


def format_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Aligned columns: the first left-aligned, the others right-aligned."""
    widths = [max(len(str(r[i])) for r in (header, *rows)) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        out = [str(cells[0]).ljust(widths[0])] + [str(c).rjust(w) for c, w in zip(cells[1:], widths[1:])]
        return "  ".join(out).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def format_duration(seconds: float) -> str:
    if abs(seconds) >= 10:
        return f"{seconds:.1f} s"
    return f"{seconds * 1000:.1f} ms" if abs(seconds) < 0.01 else f"{seconds * 1000:.0f} ms"


def table(result: BenchResult) -> str:
    rows: list[list[str]] = [
        ["load (spawn to ready)", f"{result.load_s:.2f} s", "", "1"],
    ]
    for seconds in sorted(result.rtfx_times):
        times = result.rtfx_times[seconds]  # the p95 of RTFx is that of the slow end
        rows.append([f"warm RTFx, {seconds:g} s clip", f"{seconds / percentile(times, 50):.1f}x",
                     f"{seconds / percentile(times, 95):.1f}x", str(len(times))])
    lengths = sorted(result.dictations)
    for seconds in lengths:
        values = result.latencies(seconds)
        rows.append([f"stop to text, {seconds:.1f} s dictation", format_duration(percentile(values, 50)),
                     format_duration(percentile(values, 95)), str(len(values))])
    if len(lengths) >= 2:
        short, long = result.latencies(lengths[0]), result.latencies(lengths[-1])
        rows.append([f"ratio {lengths[-1]:.1f} s / {lengths[0]:.1f} s",
                     f"{percentile(long, 50) / percentile(short, 50):.2f}",
                     f"{percentile(long, 95) / percentile(short, 95):.2f}", ""])
    if lengths:
        over = result.overheads()
        rows.append(["overhead (stop to text - compute)", format_duration(percentile(over, 50)),
                     format_duration(percentile(over, 95)), str(len(over))])
    rows.append(["worker memory (RSS)", f"{result.worker_rss / 2**20:.0f} MB", "", ""])
    rows.append(["daemon memory (RSS)", f"{result.daemon_rss / 2**20:.0f} MB", "", ""])
    title = f"ctrlspeak bench: {result.model} on {result.device}, {result.threads} thread(s)"
    return title + "\n" + format_table(["", "p50", "p95", "runs"], rows)
