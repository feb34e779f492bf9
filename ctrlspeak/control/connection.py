"""One control client on its own thread: read request lines, answer them, follow.

Its thread reads with the server's idle timeout and answers one line at a time through the
server's handler (in the server's one turn, unless the command is immediate). After a follow
request's reply, the server's publish() writes events into its socket from any thread, under
the server's lock, with :meth:`Connection.push`; a follower whose kernel send buffer is full is
dropped rather than waited for. The server and its diagram: :mod:`ctrlspeak.control.server`.
"""
from __future__ import annotations

import contextlib
import logging
import socket
import socketserver
import threading
from typing import TYPE_CHECKING

from ctrlspeak import errors
from ctrlspeak.control.protocol import READ_CHUNK, BadRequest, error_line, parse_request, reply_line

if TYPE_CHECKING:
    from ctrlspeak.control.server import ControlServer

log = logging.getLogger(__name__)

_CLOSE_GRACE = 2.0  # seconds a closing client gets to read its last error line


class Connection(socketserver.BaseRequestHandler):
    """One client on its own thread: read a line, answer it, and so on, within every bound."""

    server: ControlServer
    request: socket.socket

    def setup(self) -> None:
        self.thread = threading.current_thread()
        self.thread.name = "ctrlspeak-control-conn"
        self.following = False  # publish() writes events into its socket
        self.held: bytearray | None = None  # events published while its follow request is answered
        self.calling = False  # in a handler call, whose reply close() lets out
        self.unsent = 0  # bytes of the reply being written that the kernel has not taken yet
        self.request.settimeout(self.server.idle_timeout)
        self.server.admit(self)  # verify_request() kept a place for it

    def handle(self) -> None:
        srv, buf = self.server, bytearray()
        try:
            while not srv.closed:
                nl = buf.find(b"\n", 0, srv.max_line + 1)
                if nl >= 0:
                    line = bytes(buf[:nl])
                    del buf[:nl + 1]
                    if line.strip():
                        self._answer(line)
                    continue
                if len(buf) > srv.max_line:
                    return self._last_word(f"the request line is longer than {srv.max_line} bytes")
                try:
                    data = self.request.recv(READ_CHUNK)
                except TimeoutError:
                    what = "the end of the request line" if buf else "a request"
                    return self._last_word(f"timed out after {srv.idle_timeout:g} s waiting for {what}")
                if not data:  # the client is done, or close() or a drop shut the socket
                    if buf.strip() and not srv.closed:
                        self._last_word("incomplete request: the input ended before the newline")
                    return
                buf += data
        except OSError:  # the peer went away, or did not read for idle_timeout s (logged)
            pass
        finally:
            with srv.lock:
                self.following, self.held = False, None

    def push(self, data: bytes) -> None:
        """Write ``data`` to this follower at once, or drop it. Under the server's lock."""
        try:
            sent = self.request.send(data, socket.MSG_DONTWAIT)
        except BlockingIOError:
            sent = 0
        except OSError:  # it hung up: its thread sees the end of input
            return
        if sent < len(data):
            self.drop()

    def drop(self) -> None:
        """End a follower that fell behind; its thread wakes to the end of input. Under the server's lock."""
        log.warning("dropping a control follower that fell more than %d bytes behind", self.server.max_buffer)
        self.following, self.held = False, None
        with contextlib.suppress(OSError):
            self.request.shutdown(socket.SHUT_RDWR)

    def _answer(self, line: bytes) -> None:
        srv = self.server
        try:
            request = parse_request(line)
        except BadRequest as exc:
            log.debug("rejected a malformed control request: %s", exc.error.message)
            return self._send(error_line(exc.error, exc.request_id))
        with srv.lock:
            self.calling = True
            if request["cmd"] == "follow" and not self.following:
                self.held = bytearray()  # from now on events wait, to go out right after this reply
        with srv.turn_for(request["cmd"]):
            reply, ok = reply_line(request, srv.handler)
        with srv.lock:
            self.calling, self.held = False, (self.held if ok else None)
        if len(reply) > srv.max_buffer:
            log.warning("dropping a control client that does not read its replies (%d bytes unsent, at most %d)",
                        len(reply), srv.max_buffer)
            raise ConnectionAbortedError
        self._send(reply)
        if self.held is not None:  # a follow request, answered: from now on publish() writes its events
            self.request.settimeout(None)
            self.request.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, srv.max_buffer)
            with srv.lock:
                if self.held is not None:
                    held, self.held, self.following = bytes(self.held), None, True
                    self.push(held)

    def _send(self, data: bytes) -> None:
        """Write a reply; a follower's like its events, anyone else's while it takes some every idle_timeout s."""
        if self.following:
            with self.server.lock:
                return self.push(data)
        view = memoryview(data)
        try:
            while view:
                self.unsent = len(view)
                view = view[self.request.send(view):]
        except TimeoutError:
            log.warning("dropping a control client that has not read its replies for %g s (%d bytes unsent)",
                        self.server.idle_timeout, len(view))
            raise
        finally:
            self.unsent = 0

    def _last_word(self, message: str) -> None:
        with self.server.lock:  # publish() must not write to it now: its socket blocks again
            self.following = False
        self.request.settimeout(_CLOSE_GRACE)
        with contextlib.suppress(OSError):
            self.request.sendall(error_line(errors.UsageError(message), None))

