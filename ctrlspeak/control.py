"""The control socket: JSON lines over a Unix-domain socket, one user only.

``ctrlspeak toggle|start|stop|cancel|status|model`` use :func:`request`; status bars use
:func:`follow`; ``ctrlspeak run`` owns a :class:`ControlServer`::

    clients (same uid only)           selector thread               handler thread
    -----------------------           "ctrlspeak-control"           "ctrlspeak-control-handler"
    request()  -- {"cmd": ...}\\n -->  accept, check peer uid,
                                      split lines, validate  -----> handler(request) -> dict
               <-- {"ok": ...}\\n ---  write replies  <-- completions (one request at a time)
    follow()   <-- event lines -----  write events  <-- publish(event) from any thread
                                                       (bounded buffer per follower)

Only the selector thread touches client sockets; the handler thread and publish() hand it
bytes through lock-guarded buffers and wake it through a socketpair, so it sleeps in
select() until something happens (an idle server uses no CPU).

Protocol: one JSON object per line, each request answered by one line, in order.

* requests: ``{"cmd": "toggle"|"start"|"stop"|"cancel"|"status"|"follow"}``,
  ``{"cmd": "model", "name": "<str>"}``; any request may carry an ``"id"`` (string or integer)
  that is echoed in its reply. Unknown commands, unknown arguments and wrong types are
  refused before the handler sees them. Blank lines are ignored.
* success: ``{"ok": true, ...handler reply..., "id": ...}``; ``follow`` also carries
  ``"following": true`` and is followed by one line per published event until either side
  closes.
* failure: ``{"ok": false, "error": {"code": "ERR_...", "message": "...", "hint": "..."},
  "id": ...}``. Malformed requests give ``ERR_USAGE``; a handler exception that is not a
  :class:`~ctrlspeak.errors.CtrlspeakError` gives ``ERR_INTERNAL``; refused connections
  (another user, too many clients) get one ``ERR_SERVICE`` line and are closed.
* a line longer than ``max_line`` bytes is answered with ``ERR_USAGE`` and the connection is
  closed; so is a connection that sends nothing, or half a line, for ``idle_timeout`` s, whether
  or not it was served before (an idle client holds one of the ``max_clients`` slots).
* replies a client does not read are bounded like a follower's events: once ``max_buffer / 2``
  bytes wait for it, the server stops reading (and answering) its requests until it reads; past
  ``max_buffer``, or after ``idle_timeout`` s without reading, it is dropped with a logged reason.
"""
from __future__ import annotations

import collections
import ctypes
import fcntl
import json
import logging
import os
import queue
import selectors
import socket
import stat
import struct
import sys
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import platformdirs

from ctrlspeak import errors

log = logging.getLogger(__name__)

ENV_RUNTIME_DIR = "CTRLSPEAK_RUNTIME_DIR"
SOCKET_NAME = "control.sock"


@dataclass(frozen=True)
class ArgSpec:
    """One request argument: its JSON type and whether it must be present."""

    type: type
    required: bool = True


_NO_ARGS: Mapping[str, ArgSpec] = MappingProxyType({})

#: every command the server accepts, with its arguments (besides "cmd" and "id")
COMMANDS: Mapping[str, Mapping[str, ArgSpec]] = MappingProxyType({
    "toggle": _NO_ARGS,
    "start": _NO_ARGS,
    "stop": _NO_ARGS,
    "cancel": _NO_ARGS,
    "status": _NO_ARGS,
    "follow": _NO_ARGS,
    "model": MappingProxyType({"name": ArgSpec(str)}),
})

_DIR_HINT = "remove it, or set CTRLSPEAK_RUNTIME_DIR to a private directory of yours"
# sun_path holds 108 bytes on Linux and 104 on the BSDs, NUL included
_MAX_SUN_PATH = 107 if sys.platform.startswith("linux") else 103
_READ_CHUNK = 64 * 1024
_WRITE_CHUNK = 256 * 1024
_MAX_PENDING = 64  # parsed lines waiting per client before we stop reading from it
_CLOSE_GRACE = 2.0  # seconds a closing client gets to read its last error line
_HANDLER_JOIN = 5.0  # close() waits this long for a handler call still in progress
_MAX_REPLY = 16 * 1024 * 1024


# -- location and permissions -------------------------------------------------------------

def default_runtime_dir() -> Path:
    """``$CTRLSPEAK_RUNTIME_DIR``, else the platform's per-user runtime dir + ``ctrlspeak``."""
    override = os.environ.get(ENV_RUNTIME_DIR)
    if override:
        return Path(override).expanduser()
    return Path(platformdirs.user_runtime_dir("ctrlspeak"))


def socket_path(runtime_dir: Path | None = None) -> Path:
    """Where the control socket lives. Pure: creates nothing (the server does that)."""
    return Path(runtime_dir if runtime_dir is not None else default_runtime_dir()) / SOCKET_NAME


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` with mode 0700, or check an existing one is ours and private."""
    path = Path(path)
    try:
        path.mkdir(mode=0o700, parents=True)
    except FileExistsError:
        pass
    except OSError as exc:
        raise errors.ConfigError(f"cannot create the runtime directory {path}: {exc.strerror or exc}",
                                 hint=_DIR_HINT) from None
    try:
        st = os.stat(path)
    except OSError as exc:
        raise errors.ConfigError(f"cannot use the runtime directory {path}: {exc.strerror or exc}",
                                 hint=_DIR_HINT) from None
    if not stat.S_ISDIR(st.st_mode):
        raise errors.ConfigError(f"the runtime path {path} is not a directory", hint=_DIR_HINT)
    uid = os.getuid()
    if st.st_uid != uid:
        raise errors.ConfigError(
            f"the runtime directory {path} belongs to uid {st.st_uid}, not to you (uid {uid})", hint=_DIR_HINT)
    mode = stat.S_IMODE(st.st_mode)
    if mode & stat.S_ISVTX:  # /tmp and the like: shared by design, never ours to lock down
        raise errors.ConfigError(f"the runtime directory {path} is a shared (sticky) directory", hint=_DIR_HINT)
    if mode != 0o700:
        os.chmod(path, 0o700)
        if mode & 0o077:
            log.warning("runtime directory %s was mode %04o; set it to 0700", path, mode)
    return path


def _check_path_length(path: Path) -> None:
    size = len(os.fsencode(path))
    if size > _MAX_SUN_PATH:
        raise errors.ConfigError(
            f"the control socket path is too long for a Unix socket ({size} bytes, at most {_MAX_SUN_PATH}): {path}",
            hint="set CTRLSPEAK_RUNTIME_DIR to a shorter directory")


# -- peer credentials -----------------------------------------------------------------------

@dataclass(frozen=True)
class PeerCredentials:
    pid: int | None
    uid: int
    gid: int | None


def peer_credentials(sock: socket.socket) -> PeerCredentials:
    """The process at the other end of a connected Unix socket, as the kernel reports it."""
    if sys.platform.startswith("linux"):
        fmt = "iII"  # struct ucred {pid_t pid; uid_t uid; gid_t gid;}
        raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize(fmt))
        pid, uid, gid = struct.unpack(fmt, raw)
        return PeerCredentials(pid or None, uid, gid)
    uid_c, gid_c = ctypes.c_uint32(), ctypes.c_uint32()
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.getpeereid(sock.fileno(), ctypes.byref(uid_c), ctypes.byref(gid_c)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    pid = None
    if sys.platform == "darwin":
        try:  # SOL_LOCAL = 0, LOCAL_PEERPID = 2
            pid = struct.unpack("i", sock.getsockopt(0, 2, 4))[0] or None
        except OSError:
            pid = None
    return PeerCredentials(pid, uid_c.value, gid_c.value)


# -- messages -------------------------------------------------------------------------------

def _encode(obj: Mapping[str, Any]) -> bytes:
    # ensure_ascii: lone surrogates from a client's JSON cannot break the encoding
    return json.dumps(obj, separators=(",", ":"), allow_nan=False).encode("ascii") + b"\n"


def _error_line(exc: errors.CtrlspeakError, request_id: str | int | None) -> bytes:
    reply: dict[str, Any] = {"ok": False,
                             "error": {"code": exc.code, "message": str(exc.message), "hint": str(exc.hint)}}
    if request_id is not None:
        reply["id"] = request_id
    return _encode(reply)


class BadRequest(Exception):
    """A request line without the protocol's shape; ``error`` is what the client gets.

    Deliberately not a CtrlspeakError subclass: :func:`errors.from_code` must keep
    rebuilding ERR_USAGE as a plain UsageError on the client.
    """

    def __init__(self, message: str, request_id: str | int | None = None) -> None:
        super().__init__(message)
        self.error = errors.UsageError(message)
        self.request_id = request_id


def parse_request(line: bytes) -> dict[str, Any]:
    """Decode and validate one request line; raise :class:`BadRequest` if it is malformed."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("the request is not valid UTF-8") from None
    try:
        request = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise BadRequest(f"the request is not valid JSON ({type(exc).__name__})") from None
    if not isinstance(request, dict):
        raise BadRequest("a request must be a JSON object")
    request_id = request.get("id")
    if request_id is not None and (type(request_id) is not int and type(request_id) is not str):
        raise BadRequest('"id" must be a string or an integer')
    cmd = request.get("cmd")
    if not isinstance(cmd, str):
        raise BadRequest('a request needs a string "cmd"', request_id)
    spec = COMMANDS.get(cmd)
    if spec is None:
        raise BadRequest(f"unknown command {cmd[:40]!r}; known: {', '.join(COMMANDS)}", request_id)
    for key, value in request.items():
        if key in ("cmd", "id"):
            continue
        arg = spec.get(key)
        if arg is None:
            raise BadRequest(f"{cmd!r} takes no argument {key[:40]!r}", request_id)
        if type(value) is not arg.type:
            raise BadRequest(f"argument {key!r} of {cmd!r} must be a {arg.type.__name__}", request_id)
    for key, arg in spec.items():
        if arg.required and key not in request:
            raise BadRequest(f"{cmd!r} needs the argument {key!r}", request_id)
    return request


# -- server ---------------------------------------------------------------------------------

_LISTENER = "listener"
_WAKE = "wake"
_TOO_LONG = object()
_INCOMPLETE = object()

Handler = Callable[[dict], dict]


class _Client:
    """One connection. Fields under "lock" are shared with publish() and the handler thread."""

    __slots__ = ("sock", "fd", "inbuf", "scanned", "pending", "inflight", "last_io",
                 "no_more_input", "closing", "close_at", "mask", "closed",
                 "out", "held", "following", "dropped")  # the last four: under lock

    def __init__(self, sock: socket.socket, now: float) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.inbuf = bytearray()
        self.scanned = 0
        self.pending: collections.deque[Any] = collections.deque()
        self.inflight = False
        self.last_io = now  # the last byte received or sent, or the last reply queued
        self.no_more_input = False
        self.closing = False
        self.close_at = 0.0
        self.mask = 0
        self.closed = False
        self.out = bytearray()
        self.held = bytearray()  # events published while a follow request is being answered
        self.following = False
        self.dropped = False


class ControlServer:
    """Serve the control socket at ``path`` until :meth:`close`.

    ``handler(request) -> dict`` gets every valid request (the parsed object, "id"
    included, "follow" too, so the daemon can refuse it or publish a snapshot) and returns
    the reply body. It runs on one handler thread, one request at a time in arrival order,
    and may block (the daemon forwards to its main loop and waits ~2 s at most); meanwhile
    the selector thread keeps accepting, validating and streaming events. Commands named in
    ``immediate`` are the exception: their handler call must not block (``status`` reads a
    snapshot), and it runs on the selector thread, so a slow ``stop`` holds nobody's status up. Raising a
    CtrlspeakError sends its code to the client; any other exception is logged and sent as
    ERR_INTERNAL. Neither thread dies from anything a client or the handler does.
    """

    def __init__(self, path: Path, handler: Handler, max_line: int = 64 * 1024, max_clients: int = 32, *,
                 allowed_uid: int | None = None, max_buffer: int = 256 * 1024,
                 idle_timeout: float = 30.0, immediate: Collection[str] = ()) -> None:
        self._path = Path(path)
        #: commands the handler answers at once (from a snapshot, never blocking): called on the
        #: selector thread, so they never queue behind a slow command of another client
        self._immediate = frozenset(immediate)
        self._handler = handler
        self._max_line = max_line
        self._max_clients = max_clients
        self._allowed_uid = os.getuid() if allowed_uid is None else allowed_uid
        self._max_buffer = max_buffer
        self._idle_timeout = idle_timeout
        self._lock = threading.Lock()
        self._followers: set[_Client] = set()
        self._dirty: set[_Client] = set()
        self._done: collections.deque[tuple[_Client, bytes, str]] = collections.deque()
        self._jobs: queue.SimpleQueue[tuple[_Client, dict] | None] = queue.SimpleQueue()
        self._clients: dict[int, _Client] = {}
        self._stopping = threading.Event()
        self._closed = False
        self._identity: tuple[int, int] | None = None
        self._selector: selectors.BaseSelector | None = None
        self._listener: socket.socket | None = None
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._worker: threading.Thread | None = None

    @property
    def address(self) -> Path:
        return self._path

    @property
    def running(self) -> bool:
        threads = (self._thread, self._worker)
        return not self._closed and all(t is not None and t.is_alive() for t in threads)

    def __enter__(self) -> ControlServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- lifecycle --

    def start(self) -> None:
        with self._lock:
            if self._thread is not None or self._closed:
                raise RuntimeError("a ControlServer can be started once")
        ensure_private_dir(self._path.parent)
        _check_path_length(self._path)
        listener = self._bind()
        self._listener = listener
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._selector = selectors.DefaultSelector()
        self._selector.register(listener, selectors.EVENT_READ, _LISTENER)
        self._selector.register(self._wake_r, selectors.EVENT_READ, _WAKE)
        self._worker = threading.Thread(target=self._work, name="ctrlspeak-control-handler", daemon=True)
        self._thread = threading.Thread(target=self._run, name="ctrlspeak-control", daemon=True)
        self._worker.start()
        self._thread.start()
        log.info("control socket listening at %s", self._path)

    def close(self) -> None:
        """Stop serving: remove the socket file, close every client, end both threads."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._unlink_socket()
        self._stopping.set()
        if self._thread is None:
            return
        self._wake()
        self._jobs.put(None)
        me = threading.current_thread()
        if self._thread is not me:
            self._thread.join(timeout=_HANDLER_JOIN)
        if self._worker is not me:
            self._worker.join(timeout=_HANDLER_JOIN)
            if self._worker.is_alive():
                log.warning("a control handler call is still running after close(); not waiting for it")
        if self._wake_w is not None:
            self._wake_w.close()

    def publish(self, event: Mapping[str, Any]) -> None:
        """Send ``event`` to every follower. Thread-safe, never blocks on a client.

        A follower whose unsent backlog already exceeds ``max_buffer`` bytes is dropped.
        Raises TypeError/ValueError at once if ``event`` is not JSON-serializable.
        """
        line = _encode(event)
        with self._lock:
            if not self._followers:
                return
            for c in self._followers:
                if c.dropped:
                    continue
                if len(c.out) + len(c.held) > self._max_buffer:
                    c.dropped = True
                else:
                    (c.out if c.following else c.held).extend(line)
                self._dirty.add(c)
        self._wake()

    def _bind(self) -> socket.socket:
        dir_fd = os.open(self._path.parent, os.O_RDONLY)
        try:
            fcntl.flock(dir_fd, fcntl.LOCK_EX)  # two daemons starting at once must not both claim the path
            self._remove_stale()
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                old_umask = os.umask(0o177)  # no window where the socket is reachable by others
                try:
                    sock.bind(os.fspath(self._path))
                finally:
                    os.umask(old_umask)
                os.chmod(self._path, 0o600)
                sock.listen(128)
                sock.setblocking(False)
                st = os.stat(self._path)
                self._identity = (st.st_dev, st.st_ino)
            except OSError as exc:
                sock.close()
                raise errors.ServiceError(f"cannot create the control socket {self._path}: {exc.strerror or exc}") \
                    from None
            return sock
        finally:
            os.close(dir_fd)

    def _remove_stale(self) -> None:
        try:
            st = os.lstat(self._path)
        except FileNotFoundError:
            return
        if not stat.S_ISSOCK(st.st_mode):
            raise errors.ServiceError(f"{self._path} exists and is not a socket", hint=_DIR_HINT)
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.settimeout(1.0)
            try:
                probe.connect(os.fspath(self._path))
            except ConnectionRefusedError:
                log.info("removing stale control socket %s", self._path)
                self._path.unlink(missing_ok=True)
                return
            except FileNotFoundError:
                return
            except OSError as exc:
                raise errors.ServiceError(
                    f"another ctrlspeak daemon holds {self._path} but does not answer ({exc})") from None
            pid = _daemon_pid(probe)
        raise errors.ServiceError(f"another ctrlspeak daemon is already running (pid {pid or 'unknown'})",
                                  hint="use the running daemon (`ctrlspeak status`), or stop it first")

    def _unlink_socket(self) -> None:
        if self._identity is None:
            return
        try:
            st = os.stat(self._path)
            if (st.st_dev, st.st_ino) == self._identity:  # never remove a successor's socket
                os.unlink(self._path)
        except FileNotFoundError:
            pass

    def _wake(self) -> None:
        if self._wake_w is None:
            return
        try:
            self._wake_w.send(b"\0")
        except OSError:  # full (a wake-up is already pending) or closed
            pass

    # -- handler thread --

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            client, request = job
            try:
                line, kind = self._call_handler(request)
            except BaseException:  # noqa: BLE001 - the client must get an answer, whatever happened
                log.exception("control handler thread failed")
                line = _error_line(errors.CtrlspeakError("internal error in the control server"), None)
                kind = "failed"
            self._done.append((client, line, kind))
            self._wake()

    def _call_handler(self, request: dict) -> tuple[bytes, str]:
        cmd = request["cmd"]
        request_id = request.get("id")
        try:
            body = self._handler(request)
            if not isinstance(body, Mapping):
                raise TypeError(f"the handler returned {type(body).__name__}, not a dict")
            reply: dict[str, Any] = {"ok": True}
            reply.update((k, v) for k, v in body.items() if k not in ("ok", "id"))
            if cmd == "follow":
                reply["following"] = True
            if request_id is not None:
                reply["id"] = request_id
            return _encode(reply), ("follow" if cmd == "follow" else "ok")
        except errors.CtrlspeakError as exc:
            log.debug("control request %r failed with %s", cmd, exc.code)
            return _error_line(exc, request_id), "failed"
        except BaseException as exc:  # noqa: BLE001 - SystemExit included: this thread must live on
            log.exception("control handler failed on %r", cmd)
            err = errors.CtrlspeakError(f"internal error while handling {cmd!r}: {type(exc).__name__}: {exc}")
            return _error_line(err, request_id), "failed"

    # -- selector thread --

    def _run(self) -> None:
        try:
            while not self._stopping.is_set():
                try:
                    self._step()
                except Exception:
                    log.exception("control socket loop error; continuing")
                    time.sleep(0.05)  # a repeating failure must not become a busy loop
        finally:
            self._shutdown_io()

    def _step(self) -> None:
        assert self._selector is not None
        for key, mask in self._selector.select(self._next_timeout()):
            if self._stopping.is_set():
                return
            if key.data is _LISTENER:
                self._accept()
            elif key.data is _WAKE:
                self._drain_wake()
            else:
                self._serve(key.data, mask)
        self._drain_completions()
        self._drain_dirty()
        self._expire(time.monotonic())

    def _shutdown_io(self) -> None:
        for c in list(self._clients.values()):
            with self._lock:
                last = bytes(c.out[:_WRITE_CHUNK])
            if last:  # best effort, never waiting: e.g. a final event published just before close()
                try:
                    c.sock.send(last)
                except OSError:
                    pass
            self._close_client(c)
        with self._lock:
            self._followers.clear()
            self._dirty.clear()
        for sock in (self._listener, self._wake_r):
            if sock is not None:
                sock.close()
        if self._selector is not None:
            self._selector.close()

    def _accept(self) -> None:
        assert self._listener is not None
        for _ in range(64):  # bounded, so a flood of connections cannot starve everything else
            try:
                conn, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # EMFILE and friends: the listener stays readable, so slow down
                log.warning("cannot accept a control connection: %s", exc)
                time.sleep(0.1)
                return
            self._admit(conn)

    def _admit(self, conn: socket.socket) -> None:
        conn.setblocking(False)
        try:
            creds = peer_credentials(conn)
        except OSError as exc:
            log.warning("closing a control connection whose peer is unknown: %s", exc)
            conn.close()
            return
        if creds.uid != self._allowed_uid:
            log.warning("rejected a control connection from uid %d (pid %s): only uid %d may use it",
                        creds.uid, creds.pid, self._allowed_uid)
            _refuse(conn, errors.ServiceError("permission denied: the control socket accepts only its owner"))
            return
        if len(self._clients) >= self._max_clients:
            log.warning("refused a control connection: %d clients are connected already", len(self._clients))
            _refuse(conn, errors.ServiceError(f"too many control connections (at most {self._max_clients})",
                                              hint="close idle `ctrlspeak follow` clients and retry"))
            return
        client = _Client(conn, time.monotonic())
        self._clients[client.fd] = client
        self._update(client)

    def _drain_wake(self) -> None:
        assert self._wake_r is not None
        try:
            while self._wake_r.recv(4096):
                pass
        except (BlockingIOError, InterruptedError):
            pass

    def _serve(self, c: _Client, mask: int) -> None:
        if c.closed:
            return
        try:
            if mask & selectors.EVENT_READ:
                self._on_readable(c)
            if mask & selectors.EVENT_WRITE and not c.closed:
                self._on_writable(c)
        except Exception:
            log.exception("control connection failed; closing it")
            self._close_client(c)

    def _on_readable(self, c: _Client) -> None:
        try:
            data = c.sock.recv(_READ_CHUNK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:  # reset by the peer
            self._close_client(c)
            return
        if data:
            c.last_io = time.monotonic()
            c.inbuf += data
            self._split_lines(c)
        else:
            c.no_more_input = True
            if c.inbuf.strip():
                c.pending.append(_INCOMPLETE)
            c.inbuf.clear()
            with self._lock:  # a follower that hangs up is gone; stop queueing events for it
                c.following = False
                self._followers.discard(c)
                c.held.clear()
        self._advance(c)

    def _split_lines(self, c: _Client) -> None:
        while True:
            nl = c.inbuf.find(b"\n", c.scanned)
            if nl < 0:
                c.scanned = len(c.inbuf)
                if c.scanned > self._max_line:
                    self._abort_input(c)
                return
            line = bytes(c.inbuf[:nl])
            del c.inbuf[:nl + 1]
            c.scanned = 0
            if len(line) > self._max_line:
                self._abort_input(c)
                return
            c.pending.append(line)

    def _abort_input(self, c: _Client) -> None:
        c.pending.append(_TOO_LONG)
        c.inbuf.clear()
        c.no_more_input = True

    def _on_writable(self, c: _Client) -> None:
        with self._lock:
            chunk = bytes(c.out[:_WRITE_CHUNK])
        if chunk:
            try:
                sent = c.sock.send(chunk)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError:  # the peer went away
                self._close_client(c)
                return
            with self._lock:
                del c.out[:sent]
            if sent:
                c.last_io = time.monotonic()
        self._advance(c)  # requests held back while its replies piled up may go on now

    def _advance(self, c: _Client) -> None:
        """Answer queued lines in order; a valid request waits for the handler's reply."""
        while c.pending and not c.inflight and not c.closing and not c.closed and not self._backed_up(c):
            item = c.pending.popleft()
            if item is _TOO_LONG:
                self._reply(c, _error_line(errors.UsageError(
                    f"the request line is longer than {self._max_line} bytes"), None))
                self._start_closing(c)
            elif item is _INCOMPLETE:
                self._reply(c, _error_line(errors.UsageError(
                    "incomplete request: the input ended before the newline"), None))
            elif item.strip():
                self._dispatch(c, item)
        self._update(c)

    def _dispatch(self, c: _Client, line: bytes) -> None:
        try:
            request = parse_request(line)
        except BadRequest as exc:
            log.debug("rejected a malformed control request: %s", exc.error.message)
            self._reply(c, _error_line(exc.error, exc.request_id))
            return
        if request["cmd"] in self._immediate:
            self._reply(c, self._call_handler(request)[0])
            return
        c.inflight = True
        if request["cmd"] == "follow":
            with self._lock:  # from now on events are held, and sent right after the ack
                self._followers.add(c)
        self._jobs.put((c, request))

    def _reply(self, c: _Client, line: bytes) -> None:
        with self._lock:
            c.out += line
        self._check_backlog(c)

    def _check_backlog(self, c: _Client) -> None:
        with self._lock:
            backlog = len(c.out)
        if backlog > self._max_buffer:
            log.warning("dropping a control client that does not read its replies (%d bytes unsent, at most %d)",
                        backlog, self._max_buffer)
            self._close_client(c)

    def _backed_up(self, c: _Client) -> bool:
        """Replies pile up unread: read and answer nothing more from this client until it reads."""
        with self._lock:
            return len(c.out) >= self._max_buffer // 2

    def _start_closing(self, c: _Client) -> None:
        c.closing = True
        c.no_more_input = True
        c.pending.clear()
        c.close_at = time.monotonic() + _CLOSE_GRACE
        with self._lock:
            c.following = False
            self._followers.discard(c)
            c.held.clear()

    def _update(self, c: _Client) -> None:
        """Close a finished client, or register the events it now waits for."""
        if c.closed:
            return
        with self._lock:
            has_out = bool(c.out)
        finished = c.closing or (c.no_more_input and not c.pending)
        if finished and not has_out and not c.inflight:
            self._close_client(c)
            return
        mask = selectors.EVENT_WRITE if has_out else 0
        if not c.no_more_input and len(c.pending) < _MAX_PENDING and not self._backed_up(c):
            mask |= selectors.EVENT_READ
        if mask == c.mask:
            return
        assert self._selector is not None
        if c.mask == 0:
            self._selector.register(c.sock, mask, c)
        elif mask == 0:
            self._selector.unregister(c.sock)
        else:
            self._selector.modify(c.sock, mask, c)
        c.mask = mask

    def _close_client(self, c: _Client) -> None:
        if c.closed:
            return
        c.closed = True
        if c.mask and self._selector is not None:
            try:
                self._selector.unregister(c.sock)
            except (KeyError, ValueError):
                pass
        self._clients.pop(c.fd, None)
        with self._lock:
            self._followers.discard(c)
            self._dirty.discard(c)
            c.out.clear()
            c.held.clear()
        c.sock.close()

    def _drain_completions(self) -> None:
        while self._done:
            c, line, kind = self._done.popleft()
            c.inflight = False
            if c.closed:
                continue
            c.last_io = time.monotonic()  # the idle clock starts again from the answer
            if not c.closing:
                with self._lock:
                    c.out += line
                    if kind == "follow" and c in self._followers:
                        c.following = True
                        c.out += c.held
                        c.held.clear()
                    elif kind == "failed" and not c.following:
                        self._followers.discard(c)
                        c.held.clear()
                self._check_backlog(c)
                if c.closed:
                    continue
            self._advance(c)

    def _drain_dirty(self) -> None:
        with self._lock:
            dirty = list(self._dirty)
            self._dirty.clear()
        for c in dirty:
            if c.closed:
                continue
            if c.dropped:
                log.warning("dropping a control follower that fell more than %d bytes behind", self._max_buffer)
                self._close_client(c)
            else:
                self._update(c)

    def _deadline(self, c: _Client) -> float | None:
        if c.closing:
            return c.close_at
        if c.inflight or c.following:
            return None  # waiting for the handler, or streaming events: not the client's doing
        with self._lock:
            has_out = bool(c.out)
        if c.no_more_input and not has_out:
            return None  # about to be closed by _update
        # silent, half a line, served and then idle, or not reading its replies: all the same
        return c.last_io + self._idle_timeout

    def _next_timeout(self) -> float | None:
        deadlines = [d for d in map(self._deadline, self._clients.values()) if d is not None]
        if not deadlines:
            return None  # nothing to time out: sleep until a socket or a wake-up says otherwise
        return max(0.0, min(deadlines) - time.monotonic())

    def _expire(self, now: float) -> None:
        for c in list(self._clients.values()):
            deadline = self._deadline(c)
            if deadline is None or deadline > now:
                continue
            if c.closing:
                self._close_client(c)
                continue
            with self._lock:
                unread = len(c.out)
            if unread:
                log.warning("dropping a control client that has not read its replies for %g s (%d bytes unsent)",
                            self._idle_timeout, unread)
                self._close_client(c)
                continue
            what = "the end of the request line" if c.inbuf else "a request"
            self._reply(c, _error_line(errors.UsageError(
                f"timed out after {self._idle_timeout:g} s waiting for {what}"), None))
            self._start_closing(c)
            self._update(c)


def _refuse(conn: socket.socket, err: errors.CtrlspeakError) -> None:
    try:
        conn.send(_error_line(err, None))
    except OSError:
        pass
    finally:
        conn.close()


def _daemon_pid(sock: socket.socket) -> int | None:
    """The pid of the daemon at the other end: from the kernel, else from a status reply."""
    try:
        pid = peer_credentials(sock).pid
    except OSError:
        pid = None
    if pid:
        return pid
    try:
        sock.sendall(_encode({"cmd": "status"}))
        line = _read_line(sock, bytearray(), time.monotonic() + 1.0)
        reply = json.loads(line) if line else None
    except (OSError, ValueError, errors.CtrlspeakError):
        return None
    value = reply.get("pid") if isinstance(reply, dict) else None
    return value if type(value) is int else None


# -- client ---------------------------------------------------------------------------------

def request(cmd: str, *, path: Path | None = None, timeout: float = 5.0, **args: Any) -> dict[str, Any]:
    """Send one request and return the daemon's reply (``{"ok": True, ...}``).

    Raises the daemon's error rebuilt with :func:`errors.from_code`, DaemonNotRunning when
    nothing listens, and ServiceError when the daemon does not answer within ``timeout``.
    """
    target = socket_path() if path is None else Path(path)
    deadline = time.monotonic() + timeout
    with _connect(target, timeout) as sock:
        line = _exchange(sock, {"cmd": cmd, **args}, bytearray(), deadline, timeout)
    return _unwrap(line)


def follow(path: Path | None = None, *, timeout: float = 5.0) -> Iterator[dict[str, Any]]:
    """Subscribe to the daemon's events; the iterator ends when the daemon closes.

    Connecting and the acknowledgement happen now (errors are raised here, not on the
    first ``next``); then each published event is yielded as a dict.
    """
    target = socket_path() if path is None else Path(path)
    sock = _connect(target, timeout)
    buf = bytearray()
    try:
        _unwrap(_exchange(sock, {"cmd": "follow"}, buf, time.monotonic() + timeout, timeout))
        sock.settimeout(None)
    except BaseException:
        sock.close()
        raise
    return _events(sock, buf)


def _events(sock: socket.socket, buf: bytearray) -> Iterator[dict[str, Any]]:
    with sock:
        while True:
            try:
                line = _read_line(sock, buf, None)
            except OSError:
                return
            if line is None:
                return
            try:
                event = json.loads(line)
            except ValueError:
                log.warning("ignoring a malformed event line from the daemon")
                continue
            if isinstance(event, dict):
                yield event


def _connect(path: Path, timeout: float) -> socket.socket:
    _check_path_length(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(os.fspath(path))
    except (FileNotFoundError, NotADirectoryError):
        sock.close()
        raise errors.DaemonNotRunning(f"the ctrlspeak daemon is not running (no control socket at {path})") from None
    except ConnectionRefusedError:
        sock.close()
        raise errors.DaemonNotRunning(f"the ctrlspeak daemon is not running (nothing listens on {path})") from None
    except TimeoutError:
        sock.close()
        raise errors.ServiceError(f"the ctrlspeak daemon did not accept a connection within {timeout:g} s") from None
    except OSError as exc:
        sock.close()
        raise errors.ServiceError(f"cannot connect to the control socket {path}: {exc.strerror or exc}") from None
    try:
        owner = peer_credentials(sock).uid
    except OSError:
        owner = None
    if owner is not None and owner != os.getuid():
        sock.close()
        raise errors.ServiceError(f"refusing the control socket {path}: it belongs to uid {owner}, not to you")
    return sock


def _exchange(sock: socket.socket, message: dict[str, Any], buf: bytearray, deadline: float,
              timeout: float) -> bytes:
    try:
        try:
            sock.sendall(_encode(message))
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may have refused us already; its error line is still readable
        line = _read_line(sock, buf, deadline)
    except TimeoutError:
        raise errors.ServiceError(f"the ctrlspeak daemon did not answer within {timeout:g} s") from None
    except OSError as exc:
        raise errors.ServiceError(f"lost the connection to the ctrlspeak daemon: {exc.strerror or exc}") from None
    if line is None:
        raise errors.ServiceError("the ctrlspeak daemon closed the connection without answering")
    return line


def _read_line(sock: socket.socket, buf: bytearray, deadline: float | None) -> bytes | None:
    """The next line without its newline, or None at end of input."""
    while True:
        nl = buf.find(b"\n")
        if nl >= 0:
            line = bytes(buf[:nl])
            del buf[:nl + 1]
            return line
        if len(buf) > _MAX_REPLY:
            raise errors.ServiceError("the ctrlspeak daemon sent an over-long line")
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            sock.settimeout(remaining)
        chunk = sock.recv(_READ_CHUNK)
        if not chunk:
            return None
        buf += chunk


def _unwrap(line: bytes) -> dict[str, Any]:
    try:
        reply = json.loads(line)
    except (ValueError, RecursionError):
        raise errors.ServiceError("the ctrlspeak daemon sent a reply that is not JSON") from None
    if not isinstance(reply, dict) or not isinstance(reply.get("ok"), bool):
        raise errors.ServiceError("the ctrlspeak daemon sent a malformed reply")
    if reply["ok"]:
        return reply
    err = reply.get("error")
    if not isinstance(err, dict) or not isinstance(err.get("code"), str):
        raise errors.ServiceError("the ctrlspeak daemon sent a malformed error reply")
    hint = err.get("hint")
    raise errors.from_code(err["code"], str(err.get("message", "")), hint=hint if isinstance(hint, str) else None)
