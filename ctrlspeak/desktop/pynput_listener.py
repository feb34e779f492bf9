"""Starting and stopping pynput's keyboard listener thread within a bound, without its known hangs.

pynput's own ``wait()`` hangs when the listener dies while starting, its ``stop()`` waits for a
readiness that may never come, and its X11 listener sleeps past ``stop()`` until the next key.
:class:`~ctrlspeak.desktop.keyboard.GlobalHotkey` uses these instead.
"""
from __future__ import annotations

import logging
import threading
import time

log = logging.getLogger(__name__)

READY_TIMEOUT_S = 5.0
JOIN_TIMEOUT_S = 1.0


def wait_ready(listener: threading.Thread, timeout: float) -> bool:
    """pynput's ``Listener.wait()`` without its hang when the listener dies while starting."""
    waiter = threading.Thread(target=listener.wait, name="ctrlspeak-hotkey-ready", daemon=True)  # type: ignore[attr-defined]
    waiter.start()
    deadline = time.monotonic() + timeout
    # bounded, start-up only: a dead listener never wakes the waiter, so check both
    while waiter.is_alive() and listener.is_alive() and time.monotonic() < deadline:
        waiter.join(0.05)
    return not waiter.is_alive()


def stop_listener(listener: threading.Thread, display: str | None, *, ready: bool = True) -> None:
    if not listener.is_alive():
        # it died while starting: pynput's stop() would wait for a readiness that never comes
        return
    if not ready:
        # still starting (a server slower than READY_TIMEOUT_S): stop() blocks until it is
        # ready, so let a thread of its own wait for that
        threading.Thread(target=listener.stop, name="ctrlspeak-hotkey-stop", daemon=True).start()  # type: ignore[attr-defined]
        return
    listener.stop()  # type: ignore[attr-defined]
    if type(listener).__module__.endswith("._xorg"):
        _wake_x11_listener(listener, display)
    # Thread.join, not pynput's join: that one re-raises listener errors here
    threading.Thread.join(listener, JOIN_TIMEOUT_S)
    if listener.is_alive():
        log.warning("pynput's keyboard listener did not stop within %.1f s; abandoning its thread", JOIN_TIMEOUT_S)


def _wake_x11_listener(listener: object, display: str | None) -> None:
    """Make pynput's X11 listener thread notice stop() now.

    Its stop() queues RecordDisableContext on the recording connection without flushing
    it, so the thread sleeps until the next key event arrives (pynput PR #583). Disabling
    the same RECORD context from a connection of our own wakes it at once.
    """
    context = getattr(listener, "_context", None)
    if context is None:
        return
    try:
        import Xlib.display
        import Xlib.error
    except ImportError:
        return
    try:
        conn = Xlib.display.Display(display)
    except (Xlib.error.DisplayError, Xlib.error.ConnectionClosedError, OSError) as exc:
        log.debug("cannot reach the X server to stop the key listener: %s", exc)
        return
    try:
        # the listener may have freed the context already (BadRecordContext): expected
        conn.set_error_handler(lambda err, request: log.debug("X error while stopping the key listener: %s", err))
        conn.record_disable_context(context)
        conn.sync()
    except (Xlib.error.XError, Xlib.error.ConnectionClosedError, OSError) as exc:
        log.debug("could not disable the key listener's RECORD context: %s", exc)
    finally:
        conn.close()
