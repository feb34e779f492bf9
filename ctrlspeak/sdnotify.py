"""The systemd notify protocol (``sd_notify``), without a dependency.

Under ``Type=notify`` systemd considers the service started only when it receives
``READY=1`` on the datagram socket named by ``$NOTIFY_SOCKET``. The daemon sends it once
its worker reports ``WorkerReady`` (so ``systemctl --user start`` waits for a usable
daemon, not just a running process), ``STATUS=...`` lines that ``systemctl status`` shows,
and ``STOPPING=1`` when it begins to shut down.

Outside systemd (or on macOS) ``$NOTIFY_SOCKET`` is unset and every call is a cheap no-op
that returns False. The unit sets ``NotifyAccess=main``, so messages from the worker
process, which inherits the variable, are ignored by systemd.
"""
from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

log = logging.getLogger(__name__)

#: a send must never stall the daemon: systemd reads the socket at once, a full queue is its problem
_SEND_TIMEOUT_S = 1.0


def socket_address(environ: Mapping[str, str] | None = None) -> str | None:
    """The address in ``$NOTIFY_SOCKET`` as ``socket.connect`` wants it, or None."""
    raw = (os.environ if environ is None else environ).get("NOTIFY_SOCKET", "")
    if raw.startswith("@") and len(raw) > 1:
        # Linux abstract namespace: systemd writes the leading NUL byte as '@'
        return "\0" + raw[1:]
    if raw.startswith("/"):
        return raw
    # unset, empty, or a transport this module does not speak (vsock:...)
    return None


def notify(state: str, environ: Mapping[str, str] | None = None) -> bool:
    """Send ``state`` (newline-separated ``KEY=value`` pairs); True when it was delivered."""
    address = socket_address(environ)
    if address is None or not hasattr(socket, "AF_UNIX"):
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.settimeout(_SEND_TIMEOUT_S)
            sock.connect(address)
            sock.sendall(state.encode("utf-8"))
    except OSError as exc:
        log.debug("sd_notify %r to %r failed: %s", state.split("\n", 1)[0], address, exc)
        return False
    return True


def ready(environ: Mapping[str, str] | None = None) -> bool:
    return notify("READY=1", environ)


def status(text: str, environ: Mapping[str, str] | None = None) -> bool:
    # a newline would start a new KEY=value assignment: keep STATUS one line
    one_line = " ".join(text.split())
    return notify(f"STATUS={one_line}", environ)


def stopping(environ: Mapping[str, str] | None = None) -> bool:
    return notify("STOPPING=1", environ)
