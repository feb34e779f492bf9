"""The "x11" key source: pynput's keyboard listener (X11 RECORD on Linux, Quartz on macOS).

A key source hands :class:`~ctrlspeak.desktop.keyboard.GlobalHotkey` key names; see
:class:`~ctrlspeak.desktop.keyboard.KeySource` for the contract. Here ``press``/``release``
run on pynput's listener thread, and also on the thread of a pynput ``Controller`` caller
in this process (pynput notifies its listeners of the keys it sends itself).

pynput is imported only inside :meth:`X11Keys.start`: on Linux importing it without a
reachable X display raises, so whether keys can be read at all is asked first
(:mod:`ctrlspeak.desktop.key_access`). Starting and stopping pynput's thread within a
bound is :mod:`ctrlspeak.desktop.pynput_listener`.
"""
from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable

from ctrlspeak import errors
from ctrlspeak.desktop.key_access import MACOS_PERMISSION, is_wayland, uses_x11, x11_problem
from ctrlspeak.desktop.keys import key_name
from ctrlspeak.desktop.pynput_listener import READY_TIMEOUT_S, stop_listener, wait_ready

log = logging.getLogger(__name__)


class X11Keys:
    """Global keys through pynput. One listener per start(); stop() ends it within a bound."""

    name = "x11"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._listener: threading.Thread | None = None
        self._display: str | None = None

    @property
    def alive(self) -> bool:
        """Whether pynput's listener thread still runs (it dies with the X connection)."""
        with self._lock:
            listener = self._listener
        return listener is not None and listener.is_alive()

    def start(self, press: Callable[[str], None], release: Callable[[str], None]) -> None:
        display = os.environ.get("DISPLAY") if uses_x11() else None
        if uses_x11():
            problem = x11_problem(display)
            if problem:
                raise errors.HotkeyUnavailable(problem)
            if is_wayland():
                log.warning("Wayland session: global keys are seen only while an X11 (XWayland) window has focus")
        try:
            from pynput import keyboard as pynput_keyboard
        except ImportError as exc:
            raise errors.HotkeyUnavailable(f"pynput cannot read the keyboard: {str(exc).splitlines()[0]}") from exc

        listener = pynput_keyboard.Listener(
            on_press=lambda key, injected=False: press(key_name(key)),
            on_release=lambda key, injected=False: release(key_name(key)),
        )
        listener.start()
        ready = wait_ready(listener, READY_TIMEOUT_S)
        trusted = getattr(listener, "IS_TRUSTED", True) if sys.platform == "darwin" else True
        if not (ready and trusted and listener.is_alive()):
            stop_listener(listener, display, ready=ready)
            if sys.platform == "darwin":
                raise errors.HotkeyUnavailable(MACOS_PERMISSION)
            raise errors.HotkeyUnavailable(
                "pynput's keyboard listener did not start" + (f" on X display {display!r}" if display else "")
            )
        with self._lock:
            self._listener, self._display = listener, display
        if display:
            log.info("reading keys from X display %s", display)

    def stop(self) -> None:
        with self._lock:
            listener, display = self._listener, self._display
            self._listener = None
        if listener is not None:
            stop_listener(listener, display)
