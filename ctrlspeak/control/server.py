"""The control server: a threaded Unix server whose connections hand requests to the daemon.

::

    clients (same uid only)      "ctrlspeak-control"        "ctrlspeak-control-conn", one per client
    request() -- request\\n -->  accept; check the peer's -> read a line, validate, handler(request):
                                 uid and the client limit    the daemon posts it to its inbox and
              <-- reply\\n ---------------------------------  waits up to 10 s for its loop's reply
    follow()  <-- event lines ------------------------------  publish() writes them, from any thread

A client's socket blocks with the idle timeout; a follower's blocks for ever, and publish()
writes its events without waiting, its kernel send buffer being its queue. Threads sleep in
the kernel, so an idle server uses no CPU; close() wakes them through a stop socket and by
shutting client sockets down. The protocol and its limits: :mod:`ctrlspeak.control.protocol`.
"""
from __future__ import annotations

import contextlib
import logging
import os
import select
import socket
import socketserver
import threading
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ctrlspeak import errors
from ctrlspeak.control.protocol import (IDLE_TIMEOUT, MAX_BUFFER, MAX_CLIENTS, MAX_LINE, READ_CHUNK, BadRequest,
                                        Handler, encode, error_line, parse_request, reply_line)
from ctrlspeak.control.runtime import (check_path_length, claim_socket_path, ensure_private_dir, peer_credentials,
                                       release_socket_path)

log = logging.getLogger(__name__)

_JOIN = 5.0  # close() waits this long for its threads, a handler call still in progress included
_CLOSE_GRACE = 2.0  # seconds a closing client gets to read its last error line


@dataclass(frozen=True)
class ClientInfo:
    """One connected client, as :meth:`ControlServer.clients` sees it at one moment."""

    following: bool
    unsent: int  #: bytes of a reply being written, or of events held for it, that the kernel has not taken


class ControlServer(socketserver.ThreadingUnixStreamServer):
    """Serve the control socket at ``path`` from :meth:`start` until :meth:`close`.

    ``handler(request) -> dict`` gets every valid request ("id" and "follow" included, so the
    daemon can refuse it or publish a snapshot) and returns the reply body (errors: see
    :func:`~ctrlspeak.control.protocol.reply_line`). It runs on the client's thread, one call at
    a time, and may block; commands in ``immediate`` skip the turn, so they must answer at once
    (``status`` reads a snapshot) and a slow ``stop`` holds nobody's status up.
    """

    daemon_threads = True
    block_on_close = False  # close() joins the connection threads itself, within a bound
    request_queue_size = 128

    def __init__(self, path: Path, handler: Handler, max_line: int = MAX_LINE, max_clients: int = MAX_CLIENTS, *,
                 allowed_uid: int | None = None, max_buffer: int = MAX_BUFFER, idle_timeout: float = IDLE_TIMEOUT,
                 immediate: Collection[str] = ()) -> None:
        super().__init__(os.fspath(path), Connection, bind_and_activate=False)
        self.address = self.path = Path(path)
        self.max_line, self.max_buffer, self.idle_timeout = max_line, max_buffer, idle_timeout
        self.handler, self._immediate, self._max_clients = handler, frozenset(immediate), max_clients
        self._allowed_uid = os.getuid() if allowed_uid is None else allowed_uid
        self.lock = threading.Lock()  # the client table, closed, and each client's following/held/calling
        self._turn = threading.Lock()  # one blocking handler call at a time, as the daemon's loop takes them
        self._clients: dict[socket.socket, Connection | None] = {}  # None: admitted, its thread not started
        self.closed = False
        self._identity: tuple[int, int] | None = None
        self._stop_r, self._stop_w = socket.socketpair()  # written once by close(), never read
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return not self.closed and self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self._thread is not None or self.closed:
            raise RuntimeError("a ControlServer can be started once")
        ensure_private_dir(self.path.parent)
        check_path_length(self.path)
        try:
            self._identity = claim_socket_path(self.socket, self.path, self.request_queue_size)
        except BaseException:
            self.server_close()
            raise
        self.socket.setblocking(False)
        self._thread = threading.Thread(target=self._serve, name="ctrlspeak-control", daemon=True)
        self._thread.start()
        log.info("control socket listening at %s", self.path)

    def close(self) -> None:
        """Stop serving: remove the socket file, end every connection, join the threads (bounded)."""
        with self.lock:
            if self.closed:
                return
            self.closed = True
            conns = list(filter(None, self._clients.values()))
            for c in conns:  # each thread wakes to the end of its input; a call's reply may still go out
                with contextlib.suppress(OSError):
                    c.request.shutdown(socket.SHUT_RD if c.calling else socket.SHUT_RDWR)
        threads = [c.thread for c in conns]
        release_socket_path(self.path, self._identity)
        with contextlib.suppress(OSError):  # closed already: start() failed
            self._stop_w.send(b"\0")
        deadline = time.monotonic() + _JOIN
        for thread in (self._thread, *threads):
            if thread is not None and thread is not threading.current_thread():
                thread.join(max(0.0, deadline - time.monotonic()))
        if any(t.is_alive() for t in threads):
            log.warning("a control handler call is still running after close(); not waiting for it")
        self.server_close()

    def publish(self, event: Mapping[str, Any]) -> None:
        """Send ``event`` to every follower: thread-safe, never waits for a client (a follower
        that fell behind is dropped). Raises TypeError/ValueError if ``event`` is not JSON."""
        line = encode(event)
        with self.lock:
            for c in filter(None, self._clients.values()):
                if c.held is not None and len(c.held) + len(line) > self.max_buffer:
                    c.drop()
                elif c.held is not None:
                    c.held += line
                elif c.following:
                    c.push(line)

    def clients(self) -> list[ClientInfo]:
        with self.lock:
            return [ClientInfo(c.following or c.held is not None, c.unsent + len(c.held or b""))
                    for c in filter(None, self._clients.values())]

    # -- socketserver's hooks --

    def verify_request(self, request: Any, client_address: Any) -> bool:
        try:
            creds = peer_credentials(request)
        except OSError as exc:
            log.warning("closing a control connection whose peer is unknown: %s", exc)
            return False
        with self.lock:
            count, ours = len(self._clients), creds.uid == self._allowed_uid
            if ours and count < self._max_clients and not self.closed:
                self._clients[request] = None  # its place, taken up by its thread
                return True
        if not ours:
            log.warning("rejected a control connection from uid %d (pid %s): only uid %d may use it",
                        creds.uid, creds.pid, self._allowed_uid)
            err = errors.ServiceError("permission denied: the control socket accepts only its owner")
        elif self.closed:
            return False
        else:
            log.warning("refused a control connection: %d clients are connected already", count)
            err = errors.ServiceError(f"too many control connections (at most {self._max_clients})",
                                      hint="close idle `ctrlspeak follow` clients and retry")
        with contextlib.suppress(OSError):  # one error line; socketserver closes it next
            request.send(error_line(err, None), socket.MSG_DONTWAIT)
        return False

    def shutdown_request(self, request: Any) -> None:
        with self.lock:
            self._clients.pop(request, None)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.exception("control connection failed; closing it")

    def server_close(self) -> None:
        super().server_close()
        self._stop_r.close()
        self._stop_w.close()

    def _serve(self) -> None:
        poll = select.poll()
        poll.register(self.socket, select.POLLIN)
        poll.register(self._stop_r, select.POLLIN)
        while not self.closed:
            poll.poll()
            try:
                request, client_address = self.socket.accept()
            except BlockingIOError:
                continue
            except OSError as exc:  # EMFILE and friends: the listener stays readable, so slow down
                if not self.closed:
                    log.warning("cannot accept a control connection: %s", exc)
                    time.sleep(0.1)
                continue
            try:  # socketserver's handle_request(), without a selector of its own per call
                if self.verify_request(request, client_address):
                    self.process_request(request, client_address)
                    continue
            except Exception:  # noqa: BLE001 - e.g. no thread to start: this client goes, the server stays
                self.handle_error(request, client_address)
            self.shutdown_request(request)


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
        with self.server.lock:  # admitted by verify_request(), with a place kept for it; close() may be first
            if not self.server.closed:
                self.server._clients[self.request] = self

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
        with contextlib.nullcontext() if request["cmd"] in srv._immediate else srv._turn:
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

