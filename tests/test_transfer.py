"""The download meter and its wording, and where it shows: the CLI's progress view and the
daemon's status line (fed synthetic time and bytes)."""
from __future__ import annotations

import io

import pytest

from ctrlspeak.ipc import Progress
from ctrlspeak.progress_view import ProgressView
from ctrlspeak.daemon.status import ConsoleLine, StatusEvent, describe
from ctrlspeak.transfer import LineThrottle, Transfer, TransferMeter, human_bytes, human_duration
from ctrlspeak.transfer import describe as describe_transfer

MB = 1_000_000


def test_rate_and_time_left_over_a_sliding_window():
    meter = TransferMeter(window_s=10.0, min_span_s=1.0)
    assert meter.update(0.0, 0, 100 * MB).rate is None  # nothing to tell yet
    assert meter.update(0.5, 5 * MB, 100 * MB).rate is None
    t = meter.update(2.0, 20 * MB, 100 * MB)
    assert t.rate == pytest.approx(10 * MB) and t.eta_s == pytest.approx(8.0) and t.percent == 20.0
    for second in range(3, 30):  # then the line slows to 1 MB/s: the window forgets the fast start
        t = meter.update(float(second), 20 * MB + (second - 2) * MB, 100 * MB)
    assert t.rate == pytest.approx(1 * MB, rel=0.01)
    assert t.eta_s == pytest.approx((100 - 47) * MB / MB, rel=0.01)


def test_a_resumed_download_does_not_count_its_old_bytes_as_speed():
    meter = TransferMeter()
    meter.update(100.0, 60 * MB, 100 * MB)  # 60 MB were on disk already
    t = meter.update(102.0, 62 * MB, 100 * MB)
    assert t.rate == pytest.approx(1 * MB) and meter.fetched() == 2 * MB and meter.first_done == 60 * MB


def test_bytes_going_back_restart_the_measurement():
    meter = TransferMeter()
    meter.update(0.0, 0, 10 * MB)
    meter.update(2.0, 8 * MB, 10 * MB)
    assert meter.update(3.0, 1 * MB, 10 * MB).rate is None  # the server ignored the range: from zero


def test_wording():
    assert [human_bytes(n) for n in (0, 999, 1000, 13_096_960, 2_500_000_000, 25 * MB)] == \
        ["0 B", "999 B", "1.0 kB", "13 MB", "2.5 GB", "25 MB"]
    assert [human_duration(s) for s in (0.4, 59, 61, 600, 3599, 3600, 5400)] == \
        ["0 s", "59 s", "1 min 1 s", "10 min", "59 min", "1 h", "1 h 30 min"]
    assert describe_transfer(Transfer(1_200_000_000, 2_500_000_000, 11 * MB, 118.0)) == \
        "1.2 GB of 2.5 GB (48%), 11 MB/s, 1 min 58 s left"
    assert describe_transfer(Transfer(5 * MB)) == "5.0 MB"


def test_a_log_gets_a_line_every_step_and_at_least_every_interval():
    throttle = LineThrottle(step=10.0, interval_s=15.0)
    decisions = [throttle.due(t, p) for t, p in ((0, 0.0), (1, 5.0), (2, 10.5), (3, 12.0), (20, 13.0), (21, 14.0))]
    assert decisions == [True, False, True, False, True, False]


def _download(done: float, total: float = 100 * MB, message: str = "downloading parakeet", **kw) -> Progress:
    return Progress("download", done / total, message, done=done, total=total, unit="B", **kw)


def test_progress_view_in_a_log_says_bytes_speed_time_left_and_each_retry():
    now = [0.0]
    out = io.StringIO()
    view = ProgressView(out, bars=False, clock=lambda: now[0])
    for second in range(0, 13):
        now[0] = float(second)
        view.handle(_download(second * 8 * MB))
        if second == 6:
            view.handle(_download(second * 8 * MB, message="the connection closed part-way; retrying in 1 s "
                                                           "(try 2 of 6)", retry_in_s=1.0))
    view.handle(_download(100 * MB, message="checking parakeet (100 MB, sha256)"))
    lines = out.getvalue().splitlines()
    assert lines[0] == "ctrlspeak: downloading parakeet: 0 B of 100 MB (0%)"
    assert "ctrlspeak: downloading parakeet: 16 MB of 100 MB (16%), 8.0 MB/s, 10 s left" in lines
    assert "ctrlspeak: the connection closed part-way; retrying in 1 s (try 2 of 6)" in lines
    assert lines[-1] == "ctrlspeak: checking parakeet (100 MB, sha256)"
    assert 10 <= len(lines) <= 14  # about one line per 10 %, not one per event


def test_daemon_status_line_for_a_download():
    event = StatusEvent("loading", "downloading parakeet", percent=48.0, model="parakeet", done_bytes=1_200_000_000,
                        total_bytes=2_500_000_000, rate_bps=11e6, eta_s=118.0)
    assert describe(event) == "downloading parakeet: 1.2 GB of 2.5 GB (48%), 11 MB/s, 1 min 58 s left"
    assert event.to_json()["done_bytes"] == 1_200_000_000 and event.to_json()["eta_s"] == 118.0
    now = [0.0]
    log = io.StringIO()
    console = ConsoleLine(log, clock=lambda: now[0])
    for i in range(0, 101):
        now[0] = i * 0.1
        console(StatusEvent("loading", "downloading parakeet", percent=float(i), model="parakeet",
                            done_bytes=i * MB, total_bytes=100 * MB))
    console(StatusEvent("loading", "importing NeMo", percent=50.0, model="parakeet", stage="import"))  # a new stage
    lines = log.getvalue().splitlines()
    assert len(lines) == 12 and lines[5].endswith("downloading parakeet: 50 MB of 100 MB (50%)"), lines
    assert lines[-1].endswith("importing NeMo"), lines
