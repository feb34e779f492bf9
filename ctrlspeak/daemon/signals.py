"""Signals, handled the uvicorn way: the handler only records, the main loop acts.

``signal.set_wakeup_fd`` makes the C-level handler write the signal number to a socket;
one thread reads it and hands the signal to a callback. Nothing runs inside the Python
signal handler, so it cannot deadlock on a lock the interrupted code holds.

The daemon's callback only posts an event to its loop's inbox; the loop stops within a
bound of its own, and a second stop signal forces the exit. The one exception: after a
second signal the callback waits a few seconds on the relay's thread and, if the loop is
stuck and never got out, kills the worker and exits itself (``Daemon._on_signal``).
"""
from __future__ import annotations

import signal
import socket
import threading
from collections.abc import Callable, Iterable


class SignalRelay:
    def __init__(self, signals: Iterable[signal.Signals], on_signal: Callable[[signal.Signals], None]) -> None:
        self._signals = list(signals)
        self._on_signal = on_signal
        self._previous: dict[signal.Signals, object] = {}
        self._old_fd = -1
        self._r, self._w = socket.socketpair()
        self._r.setblocking(True)
        self._w.setblocking(False)
        self._thread = threading.Thread(target=self._read, name="signals", daemon=True)

    def install(self) -> None:
        """Must be called from the main thread."""
        self._old_fd = signal.set_wakeup_fd(self._w.fileno(), warn_on_full_buffer=False)
        for sig in self._signals:
            self._previous[sig] = signal.signal(sig, lambda *_: None)  # the wakeup fd does the work
        self._thread.start()

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
        signal.set_wakeup_fd(self._old_fd)
        try:
            self._w.send(b"\x00")  # wake the reader so it can exit
        except OSError:
            pass

    def _read(self) -> None:
        while True:
            data = self._r.recv(64)
            if not data:
                return
            for byte in data:
                if byte == 0:
                    return
                try:
                    self._on_signal(signal.Signals(byte))
                except ValueError:
                    continue
