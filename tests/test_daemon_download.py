"""The daemon while its model downloads, with a fake worker client and clock: the status line,
the notices, a dictation that waits for the model, and a retry after the download gave up.
(The real thing, on the virtual desktop against the test hub: tests/desktop/test_first_run.py.)"""
from __future__ import annotations

import pytest

from ctrlspeak import errors
from ctrlspeak.ipc import ModelRef, Progress
from tests.fakes import FakeClock, make_daemon, pump, speech

MB = 1_000_000
HF = ModelRef("parakeet", "hf", hf_id="nvidia/parakeet-tdt-0.6b-v3", filename="parakeet-tdt-0.6b-v3.nemo")


@pytest.fixture
def downloading(workers):
    workers.auto_boot = False  # the test says when the download is over
    clock = FakeClock()
    d, events = make_daemon(0.0, clock, model=HF)
    yield d, events, clock
    d.supervisor.close()


def _bytes(d, clock, done: int, total: int = 100 * MB, **kw) -> None:
    d._on_progress(Progress("download", done / total, "downloading parakeet", done=float(done), total=float(total),
                            unit="B", **kw))


def test_download_progress_goes_to_the_status_line_and_a_notice_says_how_long(downloading, workers):
    d, events, clock = downloading
    for second in range(0, 5):
        clock.now += 1.0
        _bytes(d, clock, second * 10 * MB)
    live = [e for e in events if e.state == "loading" and e.done_bytes is not None]
    assert [e.done_bytes for e in live] == [0, 10 * MB, 20 * MB, 30 * MB, 40 * MB]
    assert live[-1].total_bytes == 100 * MB and live[-1].percent == 40.0
    assert live[-1].rate_bps == 10 * MB and live[-1].eta_s == 6.0
    notices = [e.message for e in events if e.state == "notice"]
    assert notices == ["downloading parakeet: 10 MB of 100 MB (10%), 10 MB/s, 9 s left. You can dictate meanwhile: "
                       "what you say is kept and typed once it is ready"]
    assert d.snapshot()["download"]["done_bytes"] == 40 * MB  # `ctrlspeak status` sees it too
    assert d.snapshot()["download"]["eta_s"] == 6.0
    clock.now += 6.0
    _bytes(d, clock, 100 * MB)
    clock.now += 30.0  # importing NeMo and loading: not download time
    workers.instances[0].boot()
    pump(d, lambda: d.snapshot().get("worker_ready"))
    assert events[-1].state == "ready" and events[-1].message.endswith("; downloaded 100 MB in 10 s")


def test_a_dictation_during_the_download_is_kept_told_it_waits_and_typed_once_ready(downloading, workers):
    d, events, clock = downloading
    clock.now += 1.0
    _bytes(d, clock, 10 * MB)
    clock.now += 1.0
    _bytes(d, clock, 20 * MB)
    assert d.start_recording("test") is None
    assert events[-1].state == "recording"
    assert events[-1].message == ("listening; parakeet is still downloading (20%, about 8 s left): "
                                  "the text comes once it is ready")
    before = len(events)
    clock.now += 1.0
    _bytes(d, clock, 30 * MB)
    assert len(events) == before, "while recording, the recording stays on show"
    d._on_audio(speech(2.0))
    d.stop_recording()
    waiting = [e for e in events[before:] if e.state in ("transcribing", "notice")]
    assert waiting[0].state == "transcribing" and "kept, waiting: parakeet is still downloading (30%" in waiting[0].message
    assert waiting[1].state == "notice" and waiting[1].message.startswith(
        "your 2 s recording is kept and is transcribed as soon as the model is ready: parakeet is still downloading")
    clock.now += 1.0
    _bytes(d, clock, 40 * MB)
    assert events[-1].state == "transcribing" and events[-1].done_bytes == 40 * MB
    assert events[-1].message == "your recording is kept and waits for parakeet"
    assert d.snapshot()["state"] == "transcribing"
    workers.instances[0].boot()
    pump(d, lambda: d.parts.output.texts)
    assert d.parts.output.texts == ["words from worker 4000"]


def test_retries_show_on_the_line_each_time_and_as_a_notice_once_a_minute(downloading):
    d, events, clock = downloading
    for step in range(3):
        clock.now += 20.0
        _bytes(d, clock, step * MB, retry_in_s=2.0)
    assert sum(1 for e in events if e.state == "loading" and e.done_bytes is not None) == 3
    assert len([e for e in events if e.state == "notice"]) == 1
    clock.now += 41.0
    _bytes(d, clock, 3 * MB, retry_in_s=4.0)
    assert len([e for e in events if e.state == "notice"]) == 2


def test_a_dictation_after_the_download_gave_up_tries_it_again_and_is_typed(downloading, workers):
    d, events, _clock = downloading
    workers.instances[0].ready.set_exception(errors.DiskSpaceError("not enough disk space: 2.5 GB for parakeet"))
    pump(d, lambda: d.snapshot().get("state") == "error")
    assert events[-1].state == "error" and events[-1].code == "ERR_DISK_SPACE"
    assert d.start_recording("test") is None  # the person freed some space, and dictates
    assert len(workers.instances) == 2, "a fresh worker tries the download again"
    assert events[-1].message == "listening; trying to download parakeet again: the text comes once it is ready"
    d._on_audio(speech(1.0))
    d.stop_recording()
    workers.instances[1].boot()
    pump(d, lambda: d.parts.output.texts)
    assert d.parts.output.texts == ["words from worker 4001"]
