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
shutting client sockets down. The protocol and its limits: :mod:`ctrlspeak.control.protocol`;
one client's side: :mod:`ctrlspeak.control.connection`.
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
from ctrlspeak.control.connection import Connection
from ctrlspeak.control.protocol import IDLE_TIMEOUT, MAX_BUFFER, MAX_CLIENTS, MAX_LINE, Handler, encode, error_line
from ctrlspeak.control.runtime import (check_path_length, claim_socket_path, ensure_private_dir, peer_credentials,
                                       release_socket_path)

log = logging.getLogger(__name__)

_JOIN = 5.0  # close() waits this long for its threads, a handler call still in progress included


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

    def admit(self, conn: Connection) -> None:
        """Take up the place verify_request() kept for ``conn``, unless close() came first."""
        with self.lock:
            if not self.closed:
                self._clients[conn.request] = conn

    def turn_for(self, cmd: str) -> contextlib.AbstractContextManager:
        """What a handler call for ``cmd`` holds: the one turn, or nothing for an immediate command."""
        return contextlib.nullcontext() if cmd in self._immediate else self._turn

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
