"""Progress comes from the worker client's thread, "ready" from the main loop: a late progress
event must never reach the sinks after "ready" (the tray icon once stayed on "loading 100%")."""
from __future__ import annotations

import threading

from ctrlspeak import daemon as daemon_mod
from ctrlspeak.ipc import Progress
from tests.test_daemon_keepalive import FakeClient, _daemon


def test_a_progress_event_racing_ready_is_published_before_it_or_not_at_all(monkeypatch):
    # FakeClient's class state is shared with tests/test_daemon_keepalive.py: set it here, undone after
    monkeypatch.setattr(FakeClient, "instances", [])
    monkeypatch.setattr(FakeClient, "auto_boot", False)
    monkeypatch.setattr(FakeClient, "hang", False)
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    d, events = _daemon(monkeypatch, 0.0)
    client = FakeClient.instances[0]
    model_name = d._model_name
    raced = threading.Event()
    threads: list[threading.Thread] = []

    def ready_meanwhile():
        # the progress thread has passed its "still loading?" check: now the worker gets ready
        # and the main loop publishes "ready" (given 0.3 s, or blocked until progress is out)
        if threading.current_thread().name == "progress" and not raced.is_set():
            raced.set()
            client.boot()

            def dispatch_until_ready():  # the worker's states first, then its ready
                while not isinstance(event := d._inbox.get(timeout=5), daemon_mod._WorkerReady):
                    d._dispatch(event)
                d._dispatch(event)

            main = threading.Thread(target=dispatch_until_ready, name="main-loop")
            threads.append(main)
            main.start()
            main.join(0.3)
        return model_name()

    monkeypatch.setattr(d, "_model_name", ready_meanwhile)
    progress = threading.Thread(target=d._on_progress, args=(Progress("warmup", 1.0, "ready"),), name="progress")
    progress.start()
    progress.join(5)
    assert raced.is_set()
    threads[0].join(5)
    states = [e.state for e in events]
    assert "ready" in states and states[-1] == "ready", states
    assert d.status.last.state == "ready" and d._snapshot["last"]["state"] == "ready"
    d._worker.close()
