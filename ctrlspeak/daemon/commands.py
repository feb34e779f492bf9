"""What a command or a hotkey event does: turned into calls on the daemon's public methods.

:func:`handle_request` runs on the control server's threads and posts to the loop; the loop
calls the others for :class:`~ctrlspeak.daemon.events.Command` and
:class:`~ctrlspeak.daemon.events.HotkeyPressed` events. Every command gets exactly one reply,
at once, whatever happens (the control socket's handler is waiting for it).
"""
from __future__ import annotations

import logging
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from ctrlspeak import errors
from ctrlspeak.daemon.events import Command

if TYPE_CHECKING:
    from ctrlspeak.daemon.core import Daemon

log = logging.getLogger(__name__)


#: how long a control client waits for the loop to answer its command
REPLY_TIMEOUT_S = 10.0


def handle_request(daemon: Daemon, control: Any, request: dict[str, Any]) -> dict[str, Any]:
    """On the control server's thread: ``status`` and ``follow`` are answered at once from what
    the loop published; anything else is posted to the loop, and this waits for its one reply."""
    if request.get("cmd") == "status":
        return daemon.snapshot()
    if request.get("cmd") == "follow":
        # a new follower first gets the current state, then every event as it happens
        last = daemon.status.last
        if last is not None:
            control.publish({"event": "status", **last.to_json()})
        return {}
    future: Future = Future()
    daemon.post(Command(request, future))
    return future.result(timeout=REPLY_TIMEOUT_S)


def answer(daemon: Daemon, event: Command) -> None:
    cmd = event.request.get("cmd")
    try:
        if cmd in ("toggle", "start"):
            failed = daemon.toggle("socket", event.at) if cmd == "toggle" else daemon.start_recording("socket")
            if failed is not None:
                raise failed
        elif cmd == "stop":
            daemon.stop_recording(at=event.at)
        elif cmd == "cancel":
            daemon.cancel_recording()
        elif cmd == "model":
            event.reply.set_result(daemon.switch_model(str(event.request.get("name", ""))))
            return
        else:
            raise errors.UsageError(f"unknown command {cmd!r}")
        event.reply.set_result(daemon.snapshot())
    except errors.CtrlspeakError as exc:
        event.reply.set_exception(exc)
    except Exception as exc:  # noqa: BLE001 - every command gets exactly one reply, at once
        log.exception("control command %r failed", cmd)
        event.reply.set_exception(errors.CtrlspeakError(
            f"internal error while handling {cmd!r}: {type(exc).__name__}"))


def on_hotkey(daemon: Daemon, event: Any, at: float | None = None) -> None:
    from ctrlspeak.desktop.hotkey import HotkeyEvent

    if event is HotkeyEvent.ARMED and not daemon.recording:
        daemon.preroll()  # the microphone runs before the last tap
    elif event is HotkeyEvent.DISARMED and not daemon.recording:
        daemon.close_microphone()
    elif event is HotkeyEvent.TRIGGER:
        daemon.toggle("hotkey", at)
    elif event is HotkeyEvent.HOLD_START:
        daemon.start_recording("hotkey")
    elif event is HotkeyEvent.HOLD_END:
        daemon.stop_recording(at=at)
