"""Faults met by the daemon's main loop, driven with the fakes of test_daemon_keepalive (a fake
worker client, recorder and output) and the real control socket, history and journal where
those are the point. Issue 10 ("nothing lost, round two") numbers the faults."""
from __future__ import annotations

import functools
import threading
import time
from concurrent.futures import Future
from pathlib import Path

import pytest

from ctrlspeak import cli, control, errors
from ctrlspeak import daemon as daemon_mod
from ctrlspeak.config import Config
from ctrlspeak.supervisor import Supervisor
from ctrlspeak.vad import EnergyVad
from tests.test_daemon_keepalive import REF, FakeClient, FakeOutput, FakeRecorder, _pump, _speech, _wait


@pytest.fixture(autouse=True)
def _fakes(monkeypatch):
    # FakeClient's class state is shared with tests/test_daemon_keepalive.py: set it here, undone after
    monkeypatch.setattr(FakeClient, "instances", [])
    monkeypatch.setattr(FakeClient, "auto_boot", True)
    monkeypatch.setattr(FakeClient, "hang", False)
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    monkeypatch.setattr(daemon_mod, "Supervisor", functools.partial(Supervisor, client_factory=FakeClient))


def make_daemon(**cfg) -> tuple[daemon_mod.Daemon, list]:
    base = dict(journal=False, history=False, sounds=False, tray=False, notify="off")
    d = daemon_mod.Daemon(Config(**{**base, **cfg}), console=False, hotkey=False, tray=False)
    events: list = []
    d.status.add("test", events.append)
    d._vad, d._recorder, d._output, d._model = EnergyVad(), FakeRecorder(), FakeOutput(), REF
    d._start_worker(REF)
    _pump(d, lambda: d._ready is not None)
    return d, events


class Running:
    """The daemon's main loop on a thread, serving a real control socket."""

    def __init__(self, d: daemon_mod.Daemon, rundir: Path) -> None:
        self.d = d
        d._control = self.server = control.ControlServer(control.socket_path(rundir), d._handle_request)
        self.server.start()
        self.thread = threading.Thread(target=d._loop, daemon=True)
        self.thread.start()

    def request(self, cmd: str, **args):
        return control.request(cmd, path=self.server.address, **args)

    def close(self) -> None:
        self.d._force = True
        self.d._inbox.put(daemon_mod._Signal(0))
        self.thread.join(5)
        self.server.close()
        self.d._worker.close()


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


@pytest.mark.parametrize("name", BAD_NAMES[:2])
def test_the_cli_says_model_not_found_in_one_line(isolated_env, capsys, name):
    assert cli.main(["models", "use", name]) == errors.info_for("ERR_MODEL_NOT_FOUND").exit_status
    err = capsys.readouterr().err
    assert err.startswith("ctrlspeak: ERR_MODEL_NOT_FOUND: no model file at ") and err.count("\n") == 1, err
    assert "Traceback" not in err
