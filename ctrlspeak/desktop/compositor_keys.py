"""Global keys from sway's IPC: the portable Wayland key source when /dev/input is closed to us.

A Wayland client never sees keys meant for other windows, but the compositor does, and sway
tells IPC subscribers whenever one of its bindings runs. The user binds the release of each
Ctrl to a no-op that names us (see :mod:`ctrlspeak.desktop.shortcuts`)::

    bindsym --release Control_L nop ctrlspeak-tap
    bindsym --release Control_R nop ctrlspeak-tap

and every such binding event becomes one tap: ``press(key)`` then ``release(key)``, with
``key`` "ctrl" for the left key (the name pynput gives it) and "ctrl_r" for the right one.
A ``--release`` binding fires only on the release, and only when no other key was pressed
while Ctrl was down, so Ctrl+C never reaches us; Ctrl keeps working as a modifier in the
focused app (measured on sway 1.7, tests/wayland/test_compositor_keys_sway.py).

Wire format (i3-ipc, which sway speaks): ``b"i3-ipc"``, payload length (uint32), message type
(uint32), both native byte order, then a JSON payload. We send SUBSCRIBE (2) with
``["binding"]``, read its ``{"success": true}`` reply, then binding events (type 0x80000005).

Threads: :meth:`CompositorKeys.start` connects and subscribes on the caller's thread, so a
missing or refusing socket is an error the caller sees; the reading thread and ``stop`` are
:class:`~ctrlspeak.desktop.socket_keys.SocketKeys`'. Binding contents are never logged: they
are keys.
"""
from __future__ import annotations

import json
import os
import socket
import struct
from collections.abc import Callable, Iterator

from ctrlspeak import errors
from ctrlspeak.desktop.socket_keys import SocketKeys


MAGIC = b"i3-ipc"
HEADER = struct.Struct("=" + "6s" + "II")  # magic, payload length, type; native order, no padding
SUBSCRIBE = 2
EVENT_BINDING = 0x80000005
#: the command our bindings run; anything else bound in sway is none of our business
MARKER = "nop ctrlspeak-tap"
#: sway symbol -> the key name TapDetector knows (ctrlspeak.desktop.keys)
_KEYS = {"Control_L": "ctrl", "Control_R": "ctrl_r"}
#: a bigger frame is not sway talking; refuse it rather than buffer it
MAX_PAYLOAD = 1 << 20
CONNECT_TIMEOUT_S = 2.0

BINDING_LINES = tuple(f"bindsym --release {symbol} {MARKER}" for symbol in _KEYS)


class FrameError(ValueError):
    """Bytes that are not an i3-ipc frame (a wrong socket, or a corrupt stream)."""


def encode_frame(message_type: int, payload: bytes | str = b"") -> bytes:
    body = payload.encode() if isinstance(payload, str) else payload
    return HEADER.pack(MAGIC, len(body), message_type) + body


class FrameDecoder:
    """Bytes in (any split), whole ``(type, payload)`` frames out; pure, no socket."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> Iterator[tuple[int, bytes]]:
        self._buffer += data
        while len(self._buffer) >= HEADER.size:
            magic, length, message_type = HEADER.unpack_from(self._buffer)
            if magic != MAGIC:
                raise FrameError("not an i3-ipc frame (is SWAYSOCK sway's IPC socket?)")
            if length > MAX_PAYLOAD:
                raise FrameError(f"i3-ipc frame of {length} bytes is over the {MAX_PAYLOAD} byte limit")
            end = HEADER.size + length
            if len(self._buffer) < end:
                return
            payload = bytes(self._buffer[HEADER.size:end])
            del self._buffer[:end]
            yield message_type, payload


def tap_key(message_type: int, payload: bytes) -> str | None:
    """The key one of our binding events taps ("ctrl" / "ctrl_r"); None for any other frame."""
    if message_type != EVENT_BINDING:
        return None
    try:
        event = json.loads(payload)
    except ValueError:
        return None
    binding = event.get("binding") if isinstance(event, dict) else None
    if not isinstance(binding, dict) or event.get("change") != "run":
        return None
    if str(binding.get("command", "")).strip() != MARKER:
        return None
    return _KEYS.get(binding.get("symbol"), "ctrl")


def unavailable_message(problem: str) -> str:
    lines = "; ".join(BINDING_LINES)
    return (f"{problem}. The compositor key source follows sway's IPC: run ctrlspeak inside a sway "
            f"session (SWAYSOCK set) and add to the sway config `{lines}` (the release of either Ctrl "
            f"runs a no-op that ctrlspeak counts as one tap), then `swaymsg reload`; "
            f"`ctrlspeak shortcuts` prints the lines for this desktop")


class CompositorKeys(SocketKeys):
    """Key source over sway's IPC: start(press, release), stop(), name, alive."""

    compositor = "sway"

    def __init__(self, socket_path: str | None = None) -> None:
        super().__init__()
        self._socket_path = socket_path

    def start(self, press: Callable[[str], None], release: Callable[[str], None]) -> None:
        path = self._socket_path or os.environ.get("SWAYSOCK", "")
        if not path:
            raise errors.HotkeyUnavailable(unavailable_message("SWAYSOCK is not set (this is not a sway session)"))
        self.stop()
        sock, decoder = _subscribe(path)

        def decode(data: bytes) -> list[str]:
            taps = (tap_key(message_type, payload) for message_type, payload in decoder.feed(data))
            return [key for key in taps if key is not None]

        self._begin(sock, decode, press, release)


def _subscribe(path: str) -> tuple[socket.socket, FrameDecoder]:
    """A socket subscribed to binding events and its decoder (which may already hold the first
    events, read with the reply), or HotkeyUnavailable saying what to do."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(CONNECT_TIMEOUT_S)
        sock.connect(path)
        sock.sendall(encode_frame(SUBSCRIBE, json.dumps(["binding"])))
        decoder = FrameDecoder()
        reply: tuple[int, bytes] | None = None
        while reply is None:
            data = sock.recv(4096)
            if not data:
                raise ConnectionError("sway closed the connection before answering")
            reply = next(iter(decoder.feed(data)), None)
        message_type, payload = reply
        if message_type != SUBSCRIBE or not json.loads(payload).get("success"):
            raise ConnectionError("sway refused the subscription to binding events")
        sock.settimeout(None)  # the reader blocks until an event or stop()'s shutdown
        return sock, decoder
    except (OSError, ValueError, FrameError) as exc:
        sock.close()
        raise errors.HotkeyUnavailable(unavailable_message(f"sway's IPC at {path} is unreachable ({exc})")) from exc

