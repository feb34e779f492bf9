"""One control client, served on its own thread: its request lines in order, its events between.

:class:`~ctrlspeak.control.server.ControlServer` starts one per accepted client. Its socket is
non-blocking and only this thread touches it; the thread sleeps in poll() on the socket, its
own wake-up socketpair (publish() rings it when events arrive) and the server's stop socket.
Every bound a client can push against is here: the line length, the idle timeout (for a
request, half a line, or a reply it does not read), the grace to read a last error line, and a
follower's event queue.
"""
from __future__ import annotations

import logging
import select
import socket
import socketserver
import threading
import time
from typing import TYPE_CHECKING

from ctrlspeak import errors
from ctrlspeak.control.protocol import READ_CHUNK, error_line

if TYPE_CHECKING:
    from ctrlspeak.control.server import ControlServer

log = logging.getLogger(__name__)

_CLOSE_GRACE = 2.0  # seconds a closing client gets to read its last error line


class _Drop(Exception):
    """End this connection now (the reason is logged where it is raised, if it needs saying)."""


class Connection(socketserver.BaseRequestHandler):
    """One client on its own thread: read a line, answer it, and so on; a follower's events between."""

    server: ControlServer
    request: socket.socket

    def setup(self) -> None:
        self.thread = threading.current_thread()
        self.thread.name = "ctrlspeak-control-conn"
        self.inbuf = bytearray()
        self.events: bytearray | None = None  # a follower's queue: publish() fills it under the server's lock
        self.dropped = False
        self.unsent = 0
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)

    def finish(self) -> None:
        self._wake_r.close()
        self._wake_w.close()

    def handle(self) -> None:
        srv = self.server
        if not srv.register(self):
            return
        self.request.setblocking(False)
        try:
            while (line := self._next_line()) is not None:
                if not line.strip():
                    continue
                reply = srv.answer(line, self)
                if len(reply) > srv.max_buffer:
                    log.warning("dropping a control client that does not read its replies "
                                "(%d bytes unsent, at most %d)", len(reply), srv.max_buffer)
                    return
                self._send(reply, srv.idle_timeout)
        except _Drop:
            pass
        if srv.closed:  # what is queued goes out if it fits at once (e.g. a last event)
            with srv.lock:
                last, self.events = bytes(self.events or b""), None
            try:
                self.request.send(last)
            except OSError:
                pass

    def follow(self, on: bool) -> None:
        with self.server.lock:
            self.events = (self.events if self.events is not None else bytearray()) if on else None

    def wake(self) -> None:
        try:
            self._wake_w.send(b"\0")
        except OSError:  # full (a wake-up is pending already) or closed (the connection ended)
            pass

    def _next_line(self) -> bytes | None:
        """The next request line; None once the client is done or has had its last (error) word."""
        srv, eof, scanned = self.server, False, 0
        while True:
            nl = self.inbuf.find(b"\n", scanned)
            if 0 <= nl <= srv.max_line:
                line = bytes(self.inbuf[:nl])
                del self.inbuf[:nl + 1]
                return line
            if nl > srv.max_line or len(self.inbuf) > srv.max_line:
                return self._last_word(f"the request line is longer than {srv.max_line} bytes")
            if eof:
                if self.inbuf.strip():
                    self._send(error_line(errors.UsageError(
                        "incomplete request: the input ended before the newline"), None), srv.idle_timeout)
                return None
            scanned = len(self.inbuf)
            self._send_events()
            # a follower is never idle: it waits for events; anyone else has idle_timeout s to speak
            if not self._wait(select.POLLIN, None if self.events is not None else srv.idle_timeout):
                what = "the end of the request line" if self.inbuf else "a request"
                return self._last_word(f"timed out after {srv.idle_timeout:g} s waiting for {what}")
            try:
                data = self.request.recv(READ_CHUNK)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:  # reset by the peer
                raise _Drop from None
            if data:
                self.inbuf += data
            else:
                eof = True
                self.follow(False)  # a follower that hangs up is gone; stop queueing events for it

    def _last_word(self, message: str) -> None:
        self.follow(False)
        self._send(error_line(errors.UsageError(message), None), _CLOSE_GRACE)

    def _send_events(self) -> None:
        with self.server.lock:
            batch, self.events = self.events, (bytearray() if self.events is not None else None)
        if batch:
            self._send(bytes(batch), None)  # a follower is bounded by publish(), not by a clock

    def _send(self, data: bytes, timeout: float | None) -> None:
        """Write ``data``; raise _Drop if the client takes nothing for ``timeout`` s, or must go."""
        srv, view = self.server, memoryview(data)
        while view:
            self.unsent = len(view)
            if not self._wait(select.POLLOUT, timeout):
                if timeout == srv.idle_timeout:
                    log.warning("dropping a control client that has not read its replies for %g s (%d bytes unsent)",
                                timeout, len(view))
                raise _Drop
            try:
                view = view[self.request.send(view):]
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:  # the peer went away
                raise _Drop from None
        self.unsent = 0

    def _wait(self, what: int, timeout: float | None) -> bool:
        """Wait until the socket is ready for ``what``; False after ``timeout`` s. Raises _Drop
        when the server closes or this follower fell behind; new events only wake it."""
        poll = select.poll()
        poll.register(self.request, what)
        poll.register(self._wake_r, select.POLLIN)
        poll.register(self.server.stop_r, select.POLLIN)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready = dict(poll.poll(None if left is None else int(left * 1000) + 1))
            if self.request.fileno() in ready and (what == select.POLLOUT or not self.server.closed):
                return True  # closing: what is being written still goes out while the client takes it
            if self.server.closed:
                raise _Drop
            if self.dropped:
                log.warning("dropping a control follower that fell more than %d bytes behind", self.server.max_buffer)
                raise _Drop
            if self._wake_r.fileno() in ready:
                try:
                    while self._wake_r.recv(4096):
                        pass
                except (BlockingIOError, InterruptedError):
                    pass
                if what == select.POLLIN and self.events:
                    return True  # not input, but events to send: the caller loops back to them
            elif deadline is not None and time.monotonic() >= deadline:
                return False
