"""The control socket's line protocol: requests, replies, their limits and error codes.

One JSON object per line, each request answered by one line, in order.

* requests: ``{"cmd": "toggle"|"start"|"stop"|"cancel"|"status"|"follow"}``,
  ``{"cmd": "model", "name": "<str>"}``; any request may carry an ``"id"`` (string or integer)
  that is echoed in its reply. Unknown commands, unknown arguments and wrong types are
  refused before the daemon sees them. Blank lines are ignored.
* success: ``{"ok": true, ...the daemon's reply..., "id": ...}``; ``follow`` also carries
  ``"following": true`` and is followed by one line per published event until either side
  closes (events published while the follow request is answered come after its reply).
  Events are ``{"event": "status", "state": ..., ...}`` (ctrlspeak.daemon.status.StatusEvent)
  and, while a dictation is heard, ``{"event": "partial", "id": ..., "final": ..., "tentative":
  ...}`` with its text so far (ctrlspeak.daemon.live_text.Partial): the socket is the only
  place the words go, and only its owner's uid may connect.
* failure: ``{"ok": false, "error": {"code": "ERR_...", "message": "...", "hint": "..."},
  "id": ...}``. Malformed requests give ``ERR_USAGE``; a daemon exception that is not a
  :class:`~ctrlspeak.errors.CtrlspeakError` gives ``ERR_INTERNAL``; refused connections
  (another user, too many clients) get one ``ERR_SERVICE`` line and are closed.

Limits (the server's defaults; each is a ControlServer argument):

* a line longer than ``max_line`` bytes is answered with ``ERR_USAGE`` and the connection is
  closed; so is a connection that sends nothing, or half a line, for ``idle_timeout`` s, whether
  or not it was served before (an idle client holds one of the ``max_clients`` slots).
* replies a client does not read are bounded: while one waits for it (the kernel's socket
  buffer is full), the server reads and answers nothing more from it; after ``idle_timeout`` s
  without reading, or for a reply over ``max_buffer`` bytes, it is dropped with a logged reason.
* a follower's events, and its replies with them, wait in its socket's kernel send buffer,
  sized to ``max_buffer`` bytes (the kernel counts its own bookkeeping too); one that fills it
  is dropped with a logged reason, and publishing never waits for it.
* the client refuses a reply line longer than :data:`MAX_REPLY` bytes.
"""
from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from ctrlspeak import errors

log = logging.getLogger(__name__)

#: what the daemon gives the server: a valid request in, the reply's body out
Handler = Callable[[dict], dict]

MAX_LINE = 64 * 1024
MAX_CLIENTS = 32
MAX_BUFFER = 256 * 1024
IDLE_TIMEOUT = 30.0
MAX_REPLY = 16 * 1024 * 1024
READ_CHUNK = 64 * 1024


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


def encode(obj: Mapping[str, Any]) -> bytes:
    """One protocol line; raises TypeError/ValueError at once for what JSON cannot carry."""
    # ensure_ascii: lone surrogates from a client's JSON cannot break the encoding
    return json.dumps(obj, separators=(",", ":"), allow_nan=False).encode("ascii") + b"\n"


def error_line(exc: errors.CtrlspeakError, request_id: str | int | None) -> bytes:
    reply: dict[str, Any] = {"ok": False,
                             "error": {"code": exc.code, "message": str(exc.message), "hint": str(exc.hint)}}
    if request_id is not None:
        reply["id"] = request_id
    return encode(reply)


def ok_line(request: Mapping[str, Any], body: Mapping[str, Any]) -> bytes:
    """The success reply to ``request``: the daemon's ``body`` under the protocol's own keys."""
    reply: dict[str, Any] = {"ok": True}
    reply.update((k, v) for k, v in body.items() if k not in ("ok", "id"))
    if request["cmd"] == "follow":
        reply["following"] = True
    if request.get("id") is not None:
        reply["id"] = request["id"]
    return encode(reply)


def reply_line(request: dict[str, Any], handler: Handler) -> tuple[bytes, bool]:
    """The reply to a valid ``request``, and whether it is a success: ``handler``'s body, or the
    code of the CtrlspeakError it raised; anything else it raises is logged and sent as ERR_INTERNAL."""
    cmd = request["cmd"]
    try:
        body = handler(request)
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


def read_line(sock: socket.socket, buf: bytearray, deadline: float | None) -> bytes | None:
    """The next line from ``sock`` without its newline, or None at end of input.

    Raises TimeoutError past ``deadline`` (a ``time.monotonic()`` value; None waits for ever).
    """
    while True:
        nl = buf.find(b"\n")
        if nl >= 0:
            line = bytes(buf[:nl])
            del buf[:nl + 1]
            return line
        if len(buf) > MAX_REPLY:
            raise errors.ServiceError("the ctrlspeak daemon sent an over-long line")
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            sock.settimeout(remaining)
        chunk = sock.recv(READ_CHUNK)
        if not chunk:
            return None
        buf += chunk
