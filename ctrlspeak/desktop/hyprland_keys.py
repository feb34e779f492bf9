"""Global keys from Hyprland's event socket: each Ctrl tap, without /dev/input.

Hyprland writes events to every client of its second socket as lines, ``EVENT>>DATA\\n``, and
its ``event`` dispatcher posts one of our own, ``custom>>DATA``. Two release bindings (see
:mod:`ctrlspeak.desktop.shortcuts`) turn each Ctrl release into such an event::

    bindr = CTRL, Control_L, event, ctrlspeak-tap
    bindr = CTRL, Control_R, event, ctrlspeak-tap-r

and each becomes one tap, ``press(key)`` then ``release(key)`` ("ctrl" / "ctrl_r", the names
pynput gives), for the same tap detector as every other source. Every other event (windows,
workspaces) is read and dropped; none is logged, and neither is ours.

The socket: ``$XDG_RUNTIME_DIR/hypr/$HYPRLAND_INSTANCE_SIGNATURE/.socket2.sock`` (Hyprland 0.40
and later), else the same under ``/tmp/hypr`` (earlier releases). Verified against a socket
that speaks this line format; a real Hyprland only on paper here (none runs headless).

Threads: ``start`` connects on the caller's thread (a missing socket is an error the caller
sees); the reading thread and ``stop`` are :class:`~ctrlspeak.desktop.socket_keys.SocketKeys`'.
"""
from __future__ import annotations

import os
import socket
from collections.abc import Callable, Mapping

from ctrlspeak import errors
from ctrlspeak.desktop.socket_keys import SocketKeys

_EVENTS = {"custom>>ctrlspeak-tap": "ctrl", "custom>>ctrlspeak-tap-r": "ctrl_r"}
BINDING_LINES = ("bindr = CTRL, Control_L, event, ctrlspeak-tap",
                 "bindr = CTRL, Control_R, event, ctrlspeak-tap-r")
#: a longer line is not Hyprland's event format; drop it rather than buffer it
MAX_LINE = 1 << 16
CONNECT_TIMEOUT_S = 2.0


def socket_path(env: Mapping[str, str], exists: Callable[[str], bool] = os.path.exists) -> str | None:
    """Hyprland's event socket for this session, or None when this is not a Hyprland session."""
    signature = env.get("HYPRLAND_INSTANCE_SIGNATURE", "")
    if not signature or "/" in signature:
        return None
    roots = [os.path.join(env["XDG_RUNTIME_DIR"], "hypr")] if env.get("XDG_RUNTIME_DIR") else []
    candidates = [os.path.join(root, signature, ".socket2.sock") for root in (*roots, "/tmp/hypr")]
    return next((path for path in candidates if exists(path)), None)


def tap_key(line: bytes) -> str | None:
    """The key one of our events taps; None for every other line."""
    return _EVENTS.get(line.strip().decode("utf-8", errors="replace"))


class LineSplitter:
    """Bytes in (any split), whole lines out; an over-long line is dropped whole. Pure."""

    def __init__(self) -> None:
        self._buffer = b""
        self._skipping = False

    def feed(self, data: bytes) -> list[bytes]:
        *lines, self._buffer = (self._buffer + data).split(b"\n")
        if self._skipping and lines:
            lines, self._skipping = lines[1:], False  # the rest of the over-long line
        if len(self._buffer) > MAX_LINE:
            self._buffer, self._skipping = b"", True
        return lines


def unavailable_message(problem: str) -> str:
    return (f"{problem}. In Hyprland, ctrlspeak counts Ctrl taps over Hyprland's event socket: add "
            f"`{BINDING_LINES[0]}` and `{BINDING_LINES[1]}` to hyprland.conf; `ctrlspeak shortcuts` "
            f"prints them")


class HyprlandKeys(SocketKeys):
    """Key source over Hyprland's event socket: start(press, release), stop(), name, alive."""

    compositor = "Hyprland"

    def __init__(self, path: str | None) -> None:
        super().__init__()
        self._path = path

    def start(self, press: Callable[[str], None], release: Callable[[str], None]) -> None:
        if not self._path:
            raise errors.HotkeyUnavailable(unavailable_message("Hyprland's event socket was not found "
                                                               "(HYPRLAND_INSTANCE_SIGNATURE names none)"))
        self.stop()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(CONNECT_TIMEOUT_S)
            sock.connect(self._path)
            sock.settimeout(None)  # the reader blocks until an event or stop()'s shutdown
        except OSError as exc:
            sock.close()
            raise errors.HotkeyUnavailable(unavailable_message(
                f"Hyprland's event socket {self._path} is unreachable ({exc})")) from exc
        lines = LineSplitter()
        self._begin(sock, lambda data: [key for line in lines.feed(data) if (key := tap_key(line))],
                    press, release)
