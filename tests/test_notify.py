"""Desktop notifications through the real desktop-notifier library (issue 10, item 15)."""
from __future__ import annotations

import logging

from ctrlspeak.desktop.notify import Notifier, should_notify
from ctrlspeak.daemon.status import StatusEvent


def test_without_a_dbus_session_one_warning_and_no_tracebacks(monkeypatch, caplog, fault_row):
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    monkeypatch.delenv("DISPLAY", raising=False)  # dbus-fast would look for an X11-launched bus
    notifier = Notifier("normal")
    with caplog.at_level(logging.DEBUG):
        for i in range(4):
            notifier(StatusEvent("error", f"something failed {i}", code="ERR_TRANSCRIBE", hint="try again"))
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert "desktop notifications are off" in warnings[0].getMessage()
    assert "DBUS_SESSION_BUS_ADDRESS" in warnings[0].getMessage(), "it says why"
    assert not [r for r in caplog.records if r.exc_info], "no traceback per notification"
    fault_row("#15 no D-Bus session bus", "one warning that notifications are off, then quiet; no tracebacks")


def test_quiet_events_and_the_levels():
    assert not should_notify(StatusEvent("ready", quiet=True), "normal")
    assert should_notify(StatusEvent("ready", "tiny-en on cpu"), "normal")
    assert should_notify(StatusEvent("error", "x"), "errors") and not should_notify(StatusEvent("done"), "errors")
