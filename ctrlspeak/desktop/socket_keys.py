"""The part every compositor IPC key source shares: one Unix socket read on its own thread.

A subclass connects (on the caller's thread, so a refusing socket is an error the caller sees)
and hands :meth:`SocketKeys._begin` the socket and a decoder from bytes to tapped key names;
this reads until the compositor closes the socket or :meth:`SocketKeys.stop` shuts it down
(which wakes the blocked recv), calling ``press(key)`` then ``release(key)`` for each tap.
A decoder raises ValueError for bytes that are not its protocol: the source stops, said once.
"""
from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

JOIN_TIMEOUT_S = 1.0

Decoder = Callable[[bytes], list[str]]


class SocketKeys:
    """start() is the subclass's; stop(), name and alive are here."""

    name = "compositor"
    #: the compositor's name, for the warning when it closes the socket
    compositor = "the compositor"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._reader: threading.Thread | None = None

    @property
    def alive(self) -> bool:
        """Whether the reader still runs (it ends when the compositor closes the socket)."""
        with self._lock:
            reader = self._reader
        return reader is not None and reader.is_alive()

    def stop(self) -> None:
        """Idempotent; returns within about JOIN_TIMEOUT_S, even when called from a callback."""
        with self._lock:
            sock, reader = self._sock, self._reader
            self._sock = self._reader = None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)  # wakes the reader's recv()
            except OSError:
                pass  # already closed by the compositor: the reader is on its way out anyway
            sock.close()
        if reader is not None and reader is not threading.current_thread():
            reader.join(JOIN_TIMEOUT_S)
            if reader.is_alive():
                log.warning("%s key reader did not stop within %.1f s", self.compositor, JOIN_TIMEOUT_S)

    def _begin(self, sock: socket.socket, decode: Decoder, press: Callable[[str], None],
               release: Callable[[str], None], first: bytes = b"") -> None:
        """Read ``sock`` on a new thread; ``first``: bytes already read with the handshake."""
        reader = threading.Thread(target=self._read, args=(sock, decode, press, release, first),
                                  name=f"ctrlspeak-{self.compositor.lower()}-keys", daemon=True)
        with self._lock:
            self._sock, self._reader = sock, reader
        reader.start()

    def _read(self, sock: socket.socket, decode: Decoder, press: Callable[[str], None],
              release: Callable[[str], None], data: bytes) -> None:
        while True:
            try:
                keys = decode(data)
            except ValueError as exc:
                log.warning("%s keys stopped: %s", self.compositor, exc)
                break
            for key in keys:
                try:
                    press(key)
                    release(key)
                except Exception:  # a callback bug must not end the key source
                    log.exception("%s key callback failed", self.compositor)
            try:
                data = sock.recv(65536)
            except OSError:
                data = b""
            if not data:
                break
        with self._lock:
            stopped = self._sock is not sock
        if not stopped:
            log.warning("%s closed its IPC socket: global keys stopped (restart ctrlspeak in the new session)",
                        self.compositor)
