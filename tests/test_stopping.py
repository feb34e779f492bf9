"""The stop policy on a fake clock: grace, force, exit status (no threads, no daemon)."""
from __future__ import annotations

from ctrlspeak.daemon.stopping import FORCED_EXIT_STATUS, STOP_GRACE_S, Stopping
from tests.fakes import FakeClock


def test_a_first_stop_gives_the_grace_and_a_second_forces():
    clock = FakeClock()
    stop = Stopping(clock)
    assert stop.wait_s(clock()) is None and not stop.overdue(), "nothing is due before a stop"
    assert stop.request() is True
    assert stop.requested and not stop.forced and stop.exit_status == 0
    assert stop.wait_s(clock()) == STOP_GRACE_S
    clock.now += STOP_GRACE_S - 0.1
    assert not stop.overdue() and abs(stop.wait_s(clock()) - 0.1) < 1e-9
    clock.now += 0.1
    assert stop.overdue() and stop.wait_s(clock()) == 0.0
    assert stop.request() is False, "the second stop forces"
    assert stop.forced and stop.exit_status == FORCED_EXIT_STATUS
