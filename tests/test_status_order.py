"""Progress and "ready" reach the sinks in the order the loop handles them: a progress event
that arrives after "ready" (the worker's last "warmup 100%" racing its ready message) is dropped,
so the tray never sticks on "loading 100%" (it once did). Driven the way production runs:
the fake worker reports through the Supervisor's callbacks into the inbox, the real loop runs."""
from __future__ import annotations

import threading
from concurrent.futures import Future

from ctrlspeak.daemon import core as daemon_mod
from ctrlspeak.ipc import Progress
from tests.fakes import command, make_daemon, wait


def _handled(d: daemon_mod.Daemon) -> None:
    """Return once the loop has handled everything posted before this call."""
    command(d, "cancel").result(timeout=5)  # no recording: cancel changes nothing, the loop replies


def test_a_progress_event_arriving_after_ready_is_not_published(workers):
    workers.auto_boot = False
    d, events = make_daemon()
    loop = threading.Thread(target=d._loop, name="main-loop", daemon=True)
    loop.start()
    try:
        client = workers.instances[0]
        client.progress(Progress("warmup", 0.5, "warming up"))
        _handled(d)
        assert events[-1].state == "loading" and events[-1].percent == 97.5
        client.boot()
        wait(lambda: d.status.last.state == "ready", what="ready")
        client.progress(Progress("warmup", 1.0, "ready"))  # late: the loop has published ready
        _handled(d)
        states = [e.state for e in events]
        assert states[-1] == "ready" and "loading" not in states[states.index("ready"):], states
        assert d.snapshot()["last"]["state"] == "ready"
    finally:
        d._stop.forced = True
        d.post(daemon_mod.Command({"cmd": "cancel"}, Future()))
        loop.join(5)
        d.supervisor.close()
    assert not loop.is_alive()
