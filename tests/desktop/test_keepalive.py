"""keep_alive_minutes end to end: the real daemon on the virtual desktop stops its real
worker after the idle period (the process is gone, the daemon sleeps), and the next
dictation reloads tiny-en and still lands word for word at the cursor."""
from __future__ import annotations

import time

import psutil
import pytest

from tests.desktop.daemon_proc import SENTENCE, dictate as _dictate
from tests.desktop.harness import wait_until

pytestmark = pytest.mark.desktop

KEEP_ALIVE_MIN = 0.1  # 6 s


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_an_idle_daemon_unloads_its_worker_and_the_next_dictation_reloads_it(desktop, paste_target, start_daemon):
    daemon = start_daemon(env_overrides={"CTRLSPEAK_KEEP_ALIVE_MINUTES": str(KEEP_ALIVE_MIN)})
    ready = daemon.wait_ready()
    worker = ready["worker_pid"]
    assert worker and _alive(worker) and not ready["unloaded"]
    assert "spawn_main" in " ".join(psutil.Process(worker).cmdline()), "the filter below finds workers"

    status = wait_until(lambda: (s := daemon.status()).get("unloaded") and s, 60, "the keep-alive to unload")
    assert status["state"] == "idle" and not status["worker_ready"] and status["worker_pid"] is None
    assert "unloaded" in status["last"]["message"]
    wait_until(lambda: not _alive(worker), 15, "the unloaded worker process to exit")
    workers = [c for c in psutil.Process(daemon.proc.pid).children(recursive=True)
               if _alive(c.pid) and "spawn_main" in " ".join(c.cmdline())]  # not the resource tracker
    assert not workers, "no worker runs while unloaded"
    # asleep until the next tap: no polling
    proc = psutil.Process(daemon.proc.pid)
    before = sum(proc.cpu_times()[:2])
    time.sleep(3.0)
    assert sum(proc.cpu_times()[:2]) - before < 0.15, "the unloaded daemon should use no CPU"

    paste_target.focus()
    _dictate(desktop, daemon, lambda: daemon.ctl("start"), lambda: daemon.ctl("stop"))
    text = paste_target.wait_for_text(lambda t: t.strip() != "", timeout=240)
    assert text.strip() == SENTENCE
    after = daemon.status()
    assert after["worker_pid"] not in (None, worker) and not after["unloaded"]
    log = daemon.log_text()
    assert "unloaded after" in log and "reloading" in log
    assert SENTENCE not in log, "transcripts must not be logged above DEBUG"
