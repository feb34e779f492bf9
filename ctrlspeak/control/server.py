"""The control server: a threaded Unix server whose connections hand requests to the daemon.

::

    clients (same uid only)      "ctrlspeak-control"        "ctrlspeak-control-conn", one per client
    request() -- request\\n -->  accept; check the peer's -> read a line, validate, handler(request):
                                 uid and the client limit    the daemon posts it to its inbox and
              <-- reply\\n ---------------------------------  waits up to 10 s for its loop's reply
    follow()  <-- event lines ------------------------------  the events publish() queued for it

Every thread sleeps in a blocking call until something happens, so an idle server uses no
CPU; close() wakes the accepting thread through a stop socket and each client's thread by
shutting its socket down. One client's bounds are in :mod:`ctrlspeak.control.connection`,
the protocol and its limits in :mod:`ctrlspeak.control.protocol`.
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
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ctrlspeak import errors
from ctrlspeak.control.connection import Connection
from ctrlspeak.control.protocol import (IDLE_TIMEOUT, MAX_BUFFER, MAX_CLIENTS, MAX_LINE, BadRequest,
                                        encode, error_line, ok_line, parse_request)
from ctrlspeak.control.runtime import (check_path_length, claim_socket_path, ensure_private_dir, peer_credentials,
                                       release_socket_path)

log = logging.getLogger(__name__)

Handler = Callable[[dict], dict]

_JOIN = 5.0  # close() waits this long for its threads, a handler call still in progress included


@dataclass(frozen=True)
class ClientInfo:
    """One connected client, as :meth:`ControlServer.clients` sees it at one moment."""

    following: bool
    unsent: int  #: bytes of the reply or events being written to it and not yet taken by the kernel


class ControlServer(socketserver.ThreadingUnixStreamServer):
    """Serve the control socket at ``path`` from :meth:`start` until :meth:`close`.

    ``handler(request) -> dict`` gets every valid request (the parsed object, "id" included,
    "follow" too, so the daemon can refuse it or publish a snapshot) and returns the reply body.
    It runs on the client's connection thread, one call at a time, and may block: the daemon
    posts the request to its loop's inbox and waits up to 10 s for the reply. Commands named in
    ``immediate`` skip that turn-taking, so their handler must answer at once (``status`` reads
    a snapshot) and a slow ``stop`` holds nobody's status up. Raising a CtrlspeakError sends its
    code to the client; any other exception is logged and sent as ERR_INTERNAL. No thread dies
    from anything a client or the handler does.
    """

    daemon_threads = True
    block_on_close = False  # close() joins the connection threads itself, within a bound
    request_queue_size = 128

    def __init__(self, path: Path, handler: Handler, max_line: int = MAX_LINE, max_clients: int = MAX_CLIENTS, *,
                 allowed_uid: int | None = None, max_buffer: int = MAX_BUFFER, idle_timeout: float = IDLE_TIMEOUT,
                 immediate: Collection[str] = ()) -> None:
        super().__init__(os.fspath(path), Connection, bind_and_activate=False)
        self.path = Path(path)
        self.max_line, self.max_buffer, self.idle_timeout = max_line, max_buffer, idle_timeout
        self._handler, self._immediate, self._max_clients = handler, frozenset(immediate), max_clients
        self._allowed_uid = os.getuid() if allowed_uid is None else allowed_uid
        self.lock = threading.Lock()  # the client table, the closed flag and every follower's queue
        self._turn = threading.Lock()  # one blocking handler call at a time, as the daemon's loop takes them
        self._clients: dict[socket.socket, Connection | None] = {}  # None: admitted, its thread not started
        self._closed = False
        self._identity: tuple[int, int] | None = None
        self._stop_r, self._stop_w = socket.socketpair()  # written once by close(), never read
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> Path:
        return self.path

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def running(self) -> bool:
        return not self._closed and self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self._thread is not None or self._closed:
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
            if self._closed:
                return
            self._closed = True
            conns = [c for c in self._clients.values() if c is not None]
            for c in conns:  # each thread wakes to the end of input; a call's reply still goes out
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
        """Send ``event`` to every follower. Thread-safe, never blocks on a client.

        A follower whose socket buffer (``max_buffer`` bytes) is full is dropped.
        Raises TypeError/ValueError at once if ``event`` is not JSON-serializable.
        """
        line = encode(event)
        with self.lock:
            for c in self._clients.values():
                if c is not None and c.held is not None:
                    if len(c.held) + len(line) > self.max_buffer:
                        c.drop()
                    else:
                        c.held += line
                elif c is not None and c.following:
                    c.push(line)

    def clients(self) -> list[ClientInfo]:
        with self.lock:
            return [ClientInfo(c.following or c.held is not None, c.unsent + len(c.held or b""))
                    for c in self._clients.values() if c is not None]

    # -- socketserver's hooks, called on the accepting thread --

    def verify_request(self, request: Any, client_address: Any) -> bool:
        try:
            creds = peer_credentials(request)
        except OSError as exc:
            log.warning("closing a control connection whose peer is unknown: %s", exc)
            return False
        if creds.uid != self._allowed_uid:
            log.warning("rejected a control connection from uid %d (pid %s): only uid %d may use it",
                        creds.uid, creds.pid, self._allowed_uid)
            _refuse(request, errors.ServiceError("permission denied: the control socket accepts only its owner"))
            return False
        with self.lock:
            count = len(self._clients)
            admitted = count < self._max_clients and not self._closed
            if admitted:
                self._clients[request] = None
        if not admitted and not self._closed:
            log.warning("refused a control connection: %d clients are connected already", count)
            _refuse(request, errors.ServiceError(f"too many control connections (at most {self._max_clients})",
                                                 hint="close idle `ctrlspeak follow` clients and retry"))
        return admitted

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

    # -- for the connections --

    def register(self, conn: Connection) -> bool:
        with self.lock:
            if not self._closed:
                self._clients[conn.request] = conn
            return not self._closed

    def answer(self, line: bytes, conn: Connection) -> bytes:
        """The reply line to one request line of ``conn``."""
        try:
            request = parse_request(line)
        except BadRequest as exc:
            log.debug("rejected a malformed control request: %s", exc.error.message)
            return error_line(exc.error, exc.request_id)
        with self.lock:
            if request["cmd"] == "follow" and not conn.following:
                conn.held = bytearray()  # from now on events wait, and go out right after this reply
            conn.calling = True
        with contextlib.nullcontext() if request["cmd"] in self._immediate else self._turn:
            reply, ok = self._call(request)
        with self.lock:
            conn.calling = False
            if not ok:
                conn.held = None
        return reply

    def _call(self, request: dict) -> tuple[bytes, bool]:
        cmd = request["cmd"]
        try:
            body = self._handler(request)
            if not isinstance(body, Mapping):
                raise TypeError(f"the handler returned {type(body).__name__}, not a dict")
            return ok_line(request, body), True
        except errors.CtrlspeakError as exc:
            log.debug("control request %r failed with %s", cmd, exc.code)
            return error_line(exc, request.get("id")), False
        except BaseException as exc:  # noqa: BLE001 - SystemExit included: the client must get its answer
            log.exception("control handler failed on %r", cmd)
            err = errors.CtrlspeakError(f"internal error while handling {cmd!r}: {type(exc).__name__}: {exc}")
            return error_line(err, request.get("id")), False

    def _serve(self) -> None:
        poll = select.poll()
        poll.register(self.socket, select.POLLIN)
        poll.register(self._stop_r, select.POLLIN)
        while not self._closed:
            poll.poll()
            try:
                request, client_address = self.socket.accept()
            except (BlockingIOError, InterruptedError):
                continue
            except OSError as exc:  # EMFILE and friends: the listener stays readable, so slow down
                if not self._closed:
                    log.warning("cannot accept a control connection: %s", exc)
                    time.sleep(0.1)
                continue
            try:  # what socketserver's handle_request() does, minus its selector per call
                if self.verify_request(request, client_address):
                    self.process_request(request, client_address)
                    continue
            except Exception:  # noqa: BLE001 - e.g. no thread to start: this client goes, the server stays
                self.handle_error(request, client_address)
            self.shutdown_request(request)


def _refuse(conn: socket.socket, err: errors.CtrlspeakError) -> None:
    """One error line to a connection we will not serve; shutdown_request() then closes it."""
    conn.setblocking(False)
    with contextlib.suppress(OSError):
        conn.send(error_line(err, None))
