"""Faults met by the daemon's main loop, driven with the fakes of tests/fakes.py (a fake
worker client, recorder and output) and the real control socket, history and journal where
those are the point. Issue 10 ("nothing lost, round two") numbers the faults."""
from __future__ import annotations

import json
import logging
import threading
import time
from concurrent.futures import Future
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from ctrlspeak import cli, control, errors
from ctrlspeak.daemon import core as daemon_mod
from ctrlspeak.config import Config
from tests import fakes
from tests.fakes import REF, FakeOutput, FakeWorkers, pump, speech, wait


@pytest.fixture(autouse=True)
def workers(monkeypatch) -> FakeWorkers:
    return fakes.use_fake_workers(monkeypatch)  # every test here: never a real worker process


def make_daemon(**cfg) -> tuple[daemon_mod.Daemon, list]:
    d, events = fakes.make_daemon(**cfg)
    pump(d, lambda: d.snapshot().get("worker_ready"))
    return d, events


class Running:
    """The daemon's main loop on a thread, serving a real control socket."""

    def __init__(self, d: daemon_mod.Daemon, rundir: Path) -> None:
        self.d = d
        d._control = self.server = control.ControlServer(control.socket_path(rundir), d._handle_request,
                                                         immediate=("status",))
        self.server.start()
        self.thread = threading.Thread(target=d._loop, daemon=True)
        self.thread.start()

    def request(self, cmd: str, **args):
        return control.request(cmd, path=self.server.address, **args)

    def close(self) -> None:
        self.d._stop.forced = True
        self.d.post(daemon_mod.AudioIn(np.zeros(0, np.float32)))  # wakes the loop; nothing records
        self.thread.join(5)
        self.server.close()
        self.d.supervisor.close()


@pytest.fixture
def running(tmp_path_factory):
    import tempfile

    started: list[Running] = []

    def start(d: daemon_mod.Daemon) -> Running:
        r = Running(d, Path(tempfile.mkdtemp(prefix="cs", dir="/tmp")) / "rt")  # AF_UNIX paths are short
        started.append(r)
        return r

    yield start
    for r in started:
        r.close()


# -- 2: no request may stall the others ---------------------------------------------------------
BAD_NAMES = ["~nosuchuser/x.nemo", "/tmp/" + "x" * 300 + ".nemo", "a/" * 3000 + "x.nemo"]


def test_a_bad_model_name_is_answered_at_once_and_stalls_nobody(running, fault_row):
    r = running(make_daemon()[0])
    for name in BAD_NAMES:
        statuses: list[float] = []

        def status_meanwhile() -> None:
            t0 = time.monotonic()
            r.request("status")
            statuses.append(time.monotonic() - t0)

        other = threading.Thread(target=status_meanwhile)
        t0 = time.monotonic()
        other.start()
        with pytest.raises(errors.ModelNotFound):
            r.request("model", name=name, timeout=15)
        assert time.monotonic() - t0 < 2.0, "answered at once, not after the handler's 10 s wait"
        other.join(15)
        assert statuses and statuses[0] < 2.0
    fault_row("#2 model name that makes name resolution raise (~nosuchuser/x, over-long)",
              "ERR_MODEL_NOT_FOUND at once; other clients' status not held up")


def test_a_command_that_raises_anything_gets_one_internal_error_at_once(running, monkeypatch):
    d, _ = make_daemon()
    r = running(d)
    monkeypatch.setattr(d, "cancel_recording", lambda: 1 / 0)
    t0 = time.monotonic()
    with pytest.raises(errors.CtrlspeakError) as caught:
        r.request("cancel", timeout=15)
    assert caught.value.code == "ERR_INTERNAL" and "ZeroDivisionError" in caught.value.message
    assert time.monotonic() - t0 < 2.0
    assert r.request("status")["state"] == "ready", "the loop lives on"


class SlowPaste(FakeOutput):
    def deliver(self, text: str):
        time.sleep(2.0)  # a modifier still held, a slow paste tool
        return super().deliver(text)


def test_a_slow_stop_holds_no_other_clients_status_up(running):
    d, _ = make_daemon()
    d.parts.output = SlowPaste()
    r = running(d)
    r.request("start")
    d.post(daemon_mod.AudioIn(speech(1.0)))
    stopper = threading.Thread(target=r.request, args=("stop",), kwargs={"timeout": 15})
    stopper.start()
    time.sleep(0.3)  # the stop is being handled: the paste takes 2 s
    t0 = time.monotonic()
    assert r.request("status")["ok"]
    assert time.monotonic() - t0 < 1.0
    stopper.join(15)


@pytest.mark.parametrize("name", BAD_NAMES[:2])
def test_the_cli_says_model_not_found_in_one_line(isolated_env, capsys, name):
    assert cli.main(["models", "use", name]) == errors.info_for("ERR_MODEL_NOT_FOUND").exit_status
    err = capsys.readouterr().err
    assert err.startswith("ctrlspeak: ERR_MODEL_NOT_FOUND: no model file at ") and err.count("\n") == 1, err
    assert "Traceback" not in err


# -- helpers for the journal and history faults ---------------------------------------------------
def dictate(d: daemon_mod.Daemon, seconds: float = 1.0, *, during=None) -> list:
    """start, audio, stop as the socket and the recorder post them; returns the events of this
    dictation, up to the one that ends it (done, idle or error after the stop)."""
    events: list = []
    d.status.add("dictation", events.append)
    try:
        stop = Future()
        d.post(daemon_mod.Command({"cmd": "start"}, Future()))
        pump(d, lambda: d.recording)
        d.post(daemon_mod.AudioIn(speech(seconds)))
        pump(d, lambda: d._inbox.empty())
        if during is not None:
            during()
        d.post(daemon_mod.Command({"cmd": "stop"}, stop))
        pump(d, lambda: stop.done() and not d.dictations.finishing and any(e.state in ("done", "idle") for e in events))
        assert stop.exception() is None, stop.exception()
    finally:
        d.status._sinks = [(n, s) for n, s in d.status._sinks if n != "dictation"]
    return events


@pytest.fixture
def with_stores(isolated_env):
    """A daemon with the real history and journal in the isolated data and state dirs."""
    made = fakes.DaemonsWithStores()
    yield made
    made.close()


def rows(d) -> list[tuple]:
    return d.parts.history._db.execute("SELECT text, source, journal_id, latency_s FROM transcripts ORDER BY id").fetchall()


class FileSizeLimit:
    """The kernel refuses to grow any file of this process past ``limit`` bytes (RLIMIT_FSIZE):
    writes fail with EFBIG, as they fail with ENOSPC on a full disk. Python ignores SIGXFSZ."""

    def __init__(self, limit: int) -> None:
        self.limit = limit

    def __enter__(self):
        import resource

        self._old = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (self.limit, self._old[1]))
        return self

    def __exit__(self, *exc) -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_FSIZE, self._old)


# -- 7: the journal's disk is full ------------------------------------------------------------------
def test_journal_write_fails_mid_recording(with_stores, fault_row):
    d, events = with_stores()
    journal_dir = d.parts.journal.dir
    # 20 s of audio is 1.3 MB in the journal: it fails at 1 MB, mid-recording
    with FileSizeLimit(1_000_000):
        got = dictate(d, 20.0)
    errs = [e for e in got if e.state == "error"]
    assert [e.code for e in errs] == ["ERR_JOURNAL"], [(e.code, e.message) for e in errs]
    assert "kept in memory" in errs[0].message and "state directory" in errs[0].hint
    assert [e.state for e in got][-2:] == ["done", "ready"], "the words were delivered all the same"
    assert not list(journal_dir.iterdir()), "no partial files left behind"
    assert [r[1] for r in rows(d)] == ["dictation"]
    # the journal was not switched off: the next recording is journaled again
    seen: list = []
    dictate(d, 1.0, during=lambda: seen.append(d._live.session.recording is not None and any(journal_dir.iterdir())))
    assert seen == [True]
    assert not list(journal_dir.iterdir()) and len(rows(d)) == 2
    # and a restart finds nothing to "recover": no crash notice, no second row
    again, again_events = with_stores()
    pump(again, lambda: not again.dictations.finishing, timeout=2)
    assert not [e for e in again_events if e.state == "notice"] and len(rows(again)) == 2
    fault_row("#7 journal disk full mid-recording (EFBIG from RLIMIT_FSIZE)",
              "ERR_JOURNAL + hint, words delivered, no partial files, journal back next time, no duplicate")


def test_a_journal_that_could_not_open_at_start_is_tried_again_at_the_next_recording(with_stores, isolated_env):
    state = isolated_env / "state" / "ctrlspeak"
    state.mkdir(parents=True)
    (state / "journal").write_text("a file where the journal directory should be")
    d, events = with_stores()
    assert d.parts.journal is None and [e.code for e in events if e.state == "error"] == ["ERR_JOURNAL"]
    (state / "journal").unlink()
    seen: list = []
    dictate(d, during=lambda: seen.append(d._live.session.recording is not None))
    assert seen == [True] and d.parts.journal is not None


# -- 8: history cannot be written ---------------------------------------------------------------
def test_history_write_fails_then_catches_up(with_stores, fault_row):
    import sqlite3

    d, _ = with_stores()
    locker = sqlite3.connect(d.parts.history.path, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
    got = dictate(d)  # returns only once `stop` was answered
    errs = [e for e in got if e.state == "error"]
    assert [e.code for e in errs] == ["ERR_HISTORY"] and "locked" in errs[0].message
    assert d.snapshot()["state"] == "ready" and got[-1].state == "ready"
    assert len(d.parts.journal.leftovers()) == 1, "the recording stays in the journal"
    locker.execute("ROLLBACK")
    dictate(d)
    assert [r[1] for r in rows(d)] == ["dictation", "dictation"], "the first one is written once it can be"
    assert d.parts.journal.leftovers() == [] and d.dictations.unsaved == []
    locker.close()
    fault_row("#8 history write fails (database locked by another process)",
              "stop answered, ERR_HISTORY, back to ready; journal keeps it; written at the next dictation")


def test_a_transcript_history_refused_is_recovered_once_at_the_next_start(with_stores):
    import sqlite3

    d, _ = with_stores()
    locker = sqlite3.connect(d.parts.history.path, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    dictate(d)
    d.shutdown()  # still locked at exit: the journal entry stays
    locker.execute("ROLLBACK")
    again, events = with_stores()
    pump(again, lambda: not again.dictations.finishing)
    assert [r[1] for r in rows(again)] == ["recovered"] and again.parts.journal.leftovers() == []
    assert any(e.state == "notice" and "recovered" in e.message for e in events)
    locker.close()


# -- 9: exactly once across a crash or a power cut -----------------------------------------------
def test_history_commits_are_durable_and_carry_the_journal_id(with_stores):
    d, _ = with_stores()
    assert d.parts.history._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL: the WAL is fsynced
    seen: list = []
    dictate(d, during=lambda: seen.append(d._live.session.journal_id))
    assert rows(d)[0][2] == seen[0] and seen[0]


def test_replay_of_an_entry_already_in_history_adds_nothing(with_stores, fault_row):
    d, _ = with_stores()
    rec = d.parts.journal.start(model="m")
    rec.append(np.zeros(16000, np.float32))
    rec.commit(stopped_at=1.0)  # the crash came after history's commit, before the entry's removal
    d.parts.history.add("already stored", model="m", duration_s=1.0, latency_s=0.2, journal_id=rec.id)
    again, events = with_stores()
    pump(again, lambda: not again.dictations.finishing, timeout=2)
    assert [r[0] for r in rows(again)] == ["already stored"]
    assert again.parts.journal.leftovers() == [] and not [e for e in events if e.state == "notice"]
    fault_row("#9 crash between history's commit and the journal entry's removal",
              "replay finds the journal id in history: no second row, no notice, entry removed")


# -- 4, 5: no transcript text in logs or status; service status is one line ------------------------
class NotifySocket:
    """A datagram socket where the daemon's sd_notify messages land (systemd's end of it)."""

    def __init__(self, monkeypatch) -> None:
        import socket
        import tempfile

        self.path = Path(tempfile.mkdtemp(prefix="sd", dir="/tmp")) / "notify"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(self.path))
        self.sock.settimeout(0.2)
        monkeypatch.setenv("NOTIFY_SOCKET", str(self.path))

    def messages(self) -> list[str]:
        out = []
        while True:
            try:
                out.append(self.sock.recv(65536).decode())
            except TimeoutError:
                return out


class ClipboardBroken(FakeOutput):
    def deliver(self, text: str):
        self.texts.append(text)
        raise errors.PasteFailed("cannot put the text on the clipboard: xclip failed (exit 1): Error: Can't open display")


def test_a_failed_clipboard_never_puts_the_words_in_a_message(with_stores, monkeypatch, caplog, fault_row, workers):
    notify = NotifySocket(monkeypatch)
    d, events = with_stores()
    d._setup_sinks()  # the real systemd STATUS= sink (no console, notifications off)
    d.parts.output = ClipboardBroken()
    words = "my bank password is hunter two"
    workers.answer = lambda: words
    with caplog.at_level(logging.INFO):
        dictate(d)
    sent = notify.messages()
    assert sent and all(words not in m for m in sent), sent
    assert all(words not in json.dumps(e.to_json()) for e in events)
    assert all(words not in r.getMessage() for r in caplog.records)
    err = next(e for e in events if e.code == "ERR_PASTE_FAILED")
    assert "`ctrlspeak history`" in err.message
    assert rows(d)[0][0] == words, "the text belongs in history, and is there"
    fault_row("#4 the clipboard cannot be set: where does the transcript go?",
              "history only; the message says `ctrlspeak history`; no text in log, STATUS=, status events or tray")


def test_with_history_off_the_recording_is_kept_for_retry(with_stores, monkeypatch):
    d, events = with_stores()
    d.parts.history.close()
    d.parts.history = None
    d.parts.output = ClipboardBroken()
    dictate(d)
    err = next(e for e in events if e.code == "ERR_PASTE_FAILED")
    assert "ctrlspeak retry last" in err.message
    assert len(d.parts.journal.kept()) == 1 and d.parts.journal.leftovers() == []


def test_service_status_is_one_line_whatever_a_message_holds(monkeypatch, tmp_path, fault_row):
    notify = NotifySocket(monkeypatch)
    d, _ = make_daemon()
    d._setup_sinks()
    model = tmp_path / "evil\nREADY=1\nMAINPID=1.nemo"
    model.write_bytes(b"x")
    d.switch_model(str(model))
    sent = [m for m in notify.messages() if m.startswith("STATUS=")]
    assert sent and all("\n" not in m for m in sent), sent
    fault_row("#5 a model path with a newline in it (sd_notify injection)",
              "STATUS= sanitised to one line: no READY=1 or MAINPID= smuggled in")


# -- 17: latency is what the person waits ---------------------------------------------------------
class SlowRestore(FakeOutput):
    """Pastes at once, then holds the clipboard for the restore wait, as Output does."""

    def deliver(self, text: str):
        self.texts.append(text)
        inserted = time.monotonic()
        time.sleep(0.4)
        return SimpleNamespace(pasted=True, method="paste", detail="pasted; clipboard restored", inserted_at=inserted)


def test_reported_latency_ends_at_the_paste_not_after_the_restore_wait(with_stores, fault_row):
    d, _ = with_stores()
    d.parts.output = SlowRestore()
    got = dictate(d)
    done = next(e for e in got if e.state == "done")
    assert done.latency_s < 0.3, done.latency_s
    assert rows(d)[0][3] == pytest.approx(done.latency_s), "history's latency agrees"
    fault_row("#17 a 0.4 s clipboard-restore wait after the paste",
              "latency is stop to paste keystroke in done, history and bench")


# -- 19: back to ready after a dictation ----------------------------------------------------------
def test_the_status_channel_returns_to_ready_quietly_after_done(with_stores):
    from ctrlspeak.desktop.notify import should_notify

    d, _ = with_stores()
    got = dictate(d)
    assert [e.state for e in got][-2:] == ["done", "ready"]
    assert got[-1].quiet and not should_notify(got[-1], "normal"), "no 'ctrlspeak is ready' after each dictation"
    assert d.snapshot()["last"]["state"] == "ready"


# -- 14: a second daemon ------------------------------------------------------------------------
def test_a_second_daemon_stops_at_the_socket_before_it_spawns_a_worker(isolated_env, fault_row, workers):
    import tempfile

    rundir = Path(tempfile.mkdtemp(prefix="cs", dir="/tmp")) / "rt"
    first = control.ControlServer(control.socket_path(rundir), lambda request: {"state": "ready", "pid": 4242})
    first.start()
    try:
        second = daemon_mod.Daemon(Config(journal=False, history=False, sounds=False, tray=False, notify="off"),
                                   console=False, hotkey=False, tray=False, runtime_dir=rundir)
        with pytest.raises(errors.ServiceError, match="already running"):
            second.run()
        assert workers.instances == [], "no stray worker (it printed a SemLock traceback)"
        assert control.request("status", path=first.address)["pid"] == 4242, "the first one is untouched"
    finally:
        first.close()
    fault_row("#14 a second `ctrlspeak run` while one runs",
              "ERR_SERVICE 'already running (pid N)' before any worker is spawned; the first untouched")


# -- 16: consecutive dictations into one window ---------------------------------------------------
def test_consecutive_dictations_are_spaced_in_the_same_window_only(monkeypatch, workers):
    d, _ = make_daemon()
    texts = iter(["We left after breakfast.", "the  train was late", "Hello there", "and more"])
    workers.answer = lambda: next(texts)
    d.parts.output.window = "101"
    dictate(d)
    dictate(d)  # same window, the model wrote case: a space, a capital, the double space collapsed
    d.parts.output.window = "202"
    dictate(d)  # another window: a fresh start
    d.parts.output.window = None
    dictate(d)  # the window cannot be known (Wayland): taken as the same one
    assert d.parts.output.texts == ["We left after breakfast.", " The train was late", "Hello there", " and more"]


def test_the_stdout_output_has_a_line_per_dictation_and_no_leading_space(monkeypatch):
    d, _ = make_daemon()
    d.parts.output.mode = "stdout"
    dictate(d)
    dictate(d)
    assert [t[:1] for t in d.parts.output.texts] == ["w", "w"]


# -- 18: the worker dies mid-recording ----------------------------------------------------------
def test_a_worker_crash_mid_recording_keeps_the_recording_state(monkeypatch, fault_row, workers):
    d, events = make_daemon()
    d.post(daemon_mod.Command({"cmd": "start"}, Future()))
    pump(d, lambda: d.recording)
    n = len(events)
    d.post(daemon_mod.AudioIn(speech(1.0)))
    workers.instances[0].kill()  # the worker dies while the microphone records
    pump(d, lambda: len(workers.instances) == 2 and d.snapshot().get("worker_ready"), timeout=10)
    during = events[n:]
    crash = next(e for e in during if e.state == "error")
    assert crash.code == "ERR_WORKER_CRASHED" and "the recording goes on and nothing is lost" in crash.message
    assert "ready" not in [e.state for e in during], "no 'ctrlspeak is ready' while the microphone records"
    assert [e.state for e in during][-1] == "recording" and "worker is back" in during[-1].message
    assert d.snapshot()["state"] == "recording" and d.snapshot()["worker_ready"] is True
    stop = Future()
    d.post(daemon_mod.Command({"cmd": "stop"}, stop))
    pump(d, lambda: d.parts.output.texts)
    assert d.parts.output.texts == ["words from worker 4001"]
    fault_row("#18 the worker dies mid-recording",
              "state stays recording, worker readiness beside it; the notice says nothing is lost")


# -- 22: loading shows its stages on the console ---------------------------------------------------
def test_the_console_shows_each_loading_stage_with_its_percentage(monkeypatch, fault_row, workers):
    import io

    from ctrlspeak.ipc import Progress
    from ctrlspeak.daemon.status import ConsoleLine

    workers.auto_boot = False  # still loading while the test feeds progress
    d = daemon_mod.Daemon(Config(journal=False, history=False, sounds=False, tray=False, notify="off"),
                          console=False, hotkey=False, tray=False)
    out = io.StringIO()  # not a terminal: journald, a log file
    d.status.add("console", ConsoleLine(out))
    d._start_worker(REF)
    steps = [("download", 0.0, "model.nemo"), ("download", 0.3, "model.nemo"), ("download", 0.6, "model.nemo"),
             ("download", 1.0, "model.nemo"), ("import", 0.0, "importing torch"), ("import", 0.25, "importing NeMo ASR"),
             ("import", 1.0, "imported NeMo"), ("restore", 0.0, "restoring m.nemo on cpu"),
             ("restore", 1.0, "restored a ctc model"), ("warmup", 0.0, "one second of quiet noise"),
             ("warmup", 1.0, "ready")]
    for stage, fraction, message in steps:
        d._on_progress(Progress(stage, fraction, message))
    lines = out.getvalue().splitlines()
    for message, percent in (("importing torch", 40), ("importing NeMo", 48), ("restoring m.nemo", 70), ("one second of quiet", 95),
                             ("model.nemo", 12)):
        assert any(message in line and f"{percent:3d}%" in line for line in lines), (message, lines)
    assert len(lines) <= 14, lines  # short: stages and steps, not every event
    d.supervisor.close()
    fault_row("#22 a 13-22 s model load on a console that is not a terminal",
              "a line per stage (download, import, restore, warmup) with its percentage, not 0 % then silence")
