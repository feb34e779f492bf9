"""Desktop notifications: freedesktop (D-Bus) on Linux, Notification Center on macOS,
through the desktop-notifier library.

Only events a person should see become notifications (ready after loading, each delivery,
notices and errors), and each one replaces nothing: they are short-lived. When no
notification server exists the sink says so once and goes quiet.
"""
from __future__ import annotations

import logging
from typing import Any

from ctrlspeak.daemon.status import StatusEvent, describe

log = logging.getLogger(__name__)

LEVELS = ("off", "errors", "normal")


def should_notify(event: StatusEvent, level: str) -> bool:
    if level == "off" or event.quiet:
        return False
    if event.state in ("error", "notice"):
        return True
    return level == "normal" and event.state in ("ready", "done")


def title_and_body(event: StatusEvent) -> tuple[str, str]:
    if event.state == "ready":
        return "ctrlspeak is ready", event.message or f"{event.model}: triple-tap Ctrl to dictate"
    if event.state == "done":
        words = f"{event.words} words" if event.words is not None else "text"
        latency = f" in {event.latency_s:.2f} s" if event.latency_s is not None else ""
        return "ctrlspeak", event.message or f"pasted {words}{latency}"
    if event.state == "error":
        return f"ctrlspeak: {event.code or 'error'}", f"{event.message}\n{event.hint or ''}".strip()
    return "ctrlspeak", describe(event)


class _SendFailure(logging.Filter):
    """desktop-notifier catches a failed send itself, logs "Notification failed" with the whole
    traceback and returns normally: with no D-Bus session that was one traceback per
    notification. This filter, on that library's logger during our send only, keeps the
    record out of the log and tells us the send failed."""

    LOGGER = "desktop_notifier.backends.base"

    def __init__(self) -> None:
        super().__init__()
        self.error: BaseException | str | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING and record.getMessage() == "Notification failed":
            self.error = (record.exc_info[1] if record.exc_info else None) or "the notification was not sent"
            return False
        return True


class Notifier:
    """A status sink; wrap it in a ThreadedSink (sending may block on D-Bus)."""

    def __init__(self, level: str = "normal") -> None:
        self.level = level
        self._backend: Any = None
        self._broken = False

    def _get_backend(self) -> Any:
        if self._backend is None:
            from desktop_notifier import DesktopNotifierSync

            self._backend = DesktopNotifierSync(app_name="ctrlspeak")
        return self._backend

    def __call__(self, event: StatusEvent) -> None:
        if self._broken or not should_notify(event, self.level):
            return
        title, body = title_and_body(event)
        failure = _SendFailure()
        library_log = logging.getLogger(_SendFailure.LOGGER)
        library_log.addFilter(failure)
        try:
            from desktop_notifier import Urgency

            urgency = Urgency.Critical if event.state == "error" else Urgency.Normal
            self._get_backend().send(title=title, message=body, urgency=urgency, timeout=8)
        except Exception as exc:
            failure.error = exc
        finally:
            library_log.removeFilter(failure)
        if failure.error is not None:
            self._broken = True  # said once; the daemon goes on without notifications
            log.warning("desktop notifications are off: %s (the console, the tray and `ctrlspeak status` still "
                        "show everything)", _one_line(failure.error))


def _one_line(error: BaseException | str) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text[:200]
