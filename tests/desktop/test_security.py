"""Security on the real daemon: typed keys are never logged; no network once a model is cached."""
from __future__ import annotations

import socket
import stat
from pathlib import Path

import pytest

from tests.desktop.daemon_proc import SENTENCE, dictate
from tests.netaudit import attempts, audit_env, guarded_pids

pytestmark = pytest.mark.desktop

SECRET = "my secret banking password is hunter two"


def test_typed_keys_never_reach_any_log(desktop, paste_target, start_daemon):
    daemon = start_daemon(env_overrides={"CTRLSPEAK_LOG_LEVEL": "DEBUG"})
    daemon.wait_ready()
    paste_target.focus()
    desktop.xdotool("type", "--delay", "20", SECRET)
    paste_target.wait_for_text(SECRET, timeout=30)
    desktop.xdotool("key", "--delay", "80", "ctrl", "ctrl", "ctrl")  # keys the listener must act on
    daemon.wait_state("recording", timeout=15)
    daemon.ctl("cancel")
    log_files = list(Path(daemon.env["XDG_STATE_HOME"]).rglob("*.log")) + [daemon.log]
    assert any(p.stat().st_size for p in log_files)
    for path in log_files:
        text = path.read_text(errors="replace")
        for fragment in ("hunter", "banking", "password"):
            assert fragment not in text, f"{fragment!r} leaked into {path}"


def test_private_files_and_directories(desktop, paste_target, start_daemon):
    daemon = start_daemon()
    daemon.wait_ready()
    paste_target.focus()
    dictate(desktop, daemon, lambda: daemon.ctl("start"), lambda: daemon.ctl("stop"))
    paste_target.wait_for_text(lambda t: t.strip() != "", timeout=60)
    data = Path(daemon.env["XDG_DATA_HOME"]) / "ctrlspeak"
    journal = Path(daemon.env["XDG_STATE_HOME"]) / "ctrlspeak" / "journal"
    runtime = Path(daemon.env["CTRLSPEAK_RUNTIME_DIR"])
    logs = Path(daemon.env["XDG_STATE_HOME"]) / "ctrlspeak" / "log"
    for directory in (data, journal, runtime, logs):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory
    for file in (data / "history.sqlite3", runtime / "control.sock", logs / "ctrlspeak.log"):
        assert stat.S_IMODE(file.stat().st_mode) == 0o600, file


def test_no_network_at_run_time_once_the_model_is_cached(desktop, paste_target, start_daemon, tmp_path):
    overrides, audit_log = audit_env(tmp_path)
    daemon = start_daemon(env_overrides={**overrides, "HF_HUB_OFFLINE": None})  # not forced offline: it must not need to be
    status = daemon.wait_ready()
    paste_target.focus()
    dictate(desktop, daemon, lambda: daemon.ctl("start"), lambda: daemon.ctl("stop"))
    assert paste_target.wait_for_text(lambda t: t.strip() != "", timeout=60).strip() == SENTENCE
    # the guard really ran in the daemon and in its spawned worker...
    assert {daemon.proc.pid, status["worker_pid"]} <= guarded_pids(audit_log)
    # ...and it does see a connection when one happens (a positive control, on loopback)
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    probe = f"import socket; socket.create_connection(('127.0.0.1', {server.getsockname()[1]})).close()"
    import subprocess
    import sys
    subprocess.run([sys.executable, "-c", probe], env=daemon.env, check=True, timeout=30)
    server.close()
    lines = attempts(audit_log)
    assert lines and all("127.0.0.1" in line for line in lines), lines
    # so the daemon and the worker made no connection and no DNS lookup at all
