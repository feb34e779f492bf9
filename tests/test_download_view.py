"""DownloadView, the pure part of the daemon's download status: when a line, when a notice."""
from __future__ import annotations

from ctrlspeak.daemon.download_view import DownloadView
from ctrlspeak.ipc import Progress

MB = 1_000_000


def _p(done: int, total: int = 100 * MB, message: str = "downloading parakeet", **kw) -> Progress:
    return Progress("download", done / total, message, done=float(done), total=float(total), unit="B", **kw)


def test_lines_at_most_every_publish_interval_but_every_step_the_end_and_each_retry():
    view = DownloadView(publish_s=0.25)
    lines = [view.feed(_p(MB * i), 0.1 * i, "parakeet").line for i in range(6)]
    assert lines == [True, False, False, True, False, False]
    assert view.feed(_p(6 * MB, message="checking parakeet"), 0.61, "parakeet").line  # a new step
    assert view.feed(_p(6 * MB, message="x; retrying in 1 s", retry_in_s=1.0), 0.62, "parakeet").line
    assert view.feed(_p(100 * MB), 0.63, "parakeet").line  # the end
    assert not view.active and view.waiting("parakeet") == ""


def test_the_how_long_notice_waits_for_a_time_left_and_for_the_recording_to_end():
    view = DownloadView()
    assert view.feed(_p(0), 0.0, "parakeet").notice is None  # no time left known yet
    assert view.feed(_p(10 * MB), 2.0, "parakeet", quiet=True) == view.feed(_p(10 * MB), 2.0, "parakeet", quiet=True)
    said = view.feed(_p(12 * MB), 2.4, "parakeet")  # the recording ended: now it is said
    assert said.line and said.notice and said.notice.startswith("downloading parakeet: 12 MB of 100 MB (12%), ")
    assert "You can dictate meanwhile" in said.notice
    assert view.feed(_p(20 * MB), 3.0, "parakeet").notice is None  # once
    assert view.waiting("parakeet").startswith("parakeet is still downloading (20%, about ")
    assert view.summary() == "; downloaded 20 MB in 3 s"
