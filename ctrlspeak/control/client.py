"""The control socket's client: what ``ctrlspeak toggle|start|stop|cancel|status|model|follow`` call.

:func:`request` sends one request and returns the reply, or raises the daemon's error rebuilt
from its stable code; :func:`follow` yields the daemon's events. Both refuse a socket owned by
another user.
"""
from __future__ import annotations

import json
import logging
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ctrlspeak import errors
from ctrlspeak.control.protocol import encode, read_line
from ctrlspeak.control.runtime import check_path_length, peer_credentials, socket_path

log = logging.getLogger(__name__)


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
                line = read_line(sock, buf, None)
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
    check_path_length(path)
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
            sock.sendall(encode(message))
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may have refused us already; its error line is still readable
        line = read_line(sock, buf, deadline)
    except TimeoutError:
        raise errors.ServiceError(f"the ctrlspeak daemon did not answer within {timeout:g} s") from None
    except OSError as exc:
        raise errors.ServiceError(f"lost the connection to the ctrlspeak daemon: {exc.strerror or exc}") from None
    if line is None:
        raise errors.ServiceError("the ctrlspeak daemon closed the connection without answering")
    return line


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
