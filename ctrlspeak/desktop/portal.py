"""xdg-desktop-portal over D-Bus: one connection, its loop, and the Request/Response pattern.

Every portal call that may involve the person (a dialog) returns a Request object path at once
and answers later with ``Response(u code, a{sv} results)`` on that path. We subscribe to
Response before calling and key the wait on the path the portal will use,
``/org/freedesktop/portal/desktop/request/SENDER/TOKEN``, so an answer that comes before the
method's own reply is not lost.

Threads: a :class:`PortalBus` owns one thread running an asyncio loop for dbus-fast; other
threads hand it coroutines with :meth:`PortalBus.run` (waits) or :meth:`PortalBus.submit` (a
concurrent Future). Signal handlers run on that thread.
"""
from __future__ import annotations

import asyncio
import itertools
import os
import threading
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

PORTAL = "org.freedesktop.portal.Desktop"
PATH = "/org/freedesktop/portal/desktop"
REQUEST_IFACE = "org.freedesktop.portal.Request"
SESSION_IFACE = "org.freedesktop.portal.Session"
CONNECT_TIMEOUT_S = 5.0
JOIN_TIMEOUT_S = 2.0
#: Request.Response codes
CANCELLED, OTHER = 1, 2


class PortalError(ConnectionError):
    """The bus or the portal failed, or answered with an error."""


def session_bus_address(env: Mapping[str, str]) -> str | None:
    """The session bus of ``env``: DBUS_SESSION_BUS_ADDRESS, else systemd's socket at
    ``$XDG_RUNTIME_DIR/bus`` where it exists; None when there is no bus to ask (libdbus would
    autolaunch one on the X display instead, which nothing here may do)."""
    if env.get("DBUS_SESSION_BUS_ADDRESS"):
        return env["DBUS_SESSION_BUS_ADDRESS"]
    runtime = env.get("XDG_RUNTIME_DIR", "")
    if runtime and os.path.exists(os.path.join(runtime, "bus")):
        return f"unix:path={os.path.join(runtime, 'bus')}"
    return None


def request_path(unique_name: str, token: str) -> str:
    """Where the portal puts the Request of a call made with ``handle_token = token``."""
    sender = unique_name.lstrip(":").replace(".", "_")
    return f"{PATH}/request/{sender}/{token}"


def plain(value: Any) -> Any:
    return getattr(value, "value", value)  # dbus-fast wraps a{sv} values in Variant


class PortalBus:
    """A session-bus connection on its own loop thread. ``open`` connects or raises PortalError."""

    def __init__(self, bus_address: str | None, name: str) -> None:
        self._address = bus_address
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=name, daemon=True)
        self._waits: dict[str, asyncio.Future] = {}
        self._handlers: list[Callable[[Any], None]] = []
        self._tokens = itertools.count(1)
        self._bus: Any = None

    @classmethod
    def open(cls, bus_address: str | None, *, name: str, matches: tuple[str, ...] = ()) -> PortalBus:
        portal = cls(bus_address, name)
        portal._thread.start()
        try:
            portal.run(portal._connect(matches), CONNECT_TIMEOUT_S)
        except BaseException:
            portal.close()
            raise
        return portal

    @property
    def alive(self) -> bool:
        return self._thread.is_alive() and self._bus is not None and self._bus.connected

    def run(self, coro: Awaitable[Any], timeout: float) -> Any:
        try:
            return self.submit(coro).result(timeout)
        except FutureTimeout as exc:
            raise PortalError(f"no answer within {timeout:g} s") from exc

    def submit(self, coro: Awaitable[Any]) -> Future:
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    def on_signal(self, handler: Callable[[Any], None]) -> None:
        """``handler(message)`` for every signal the match rules let through (loop thread)."""
        self._handlers.append(handler)

    def token(self, stem: str) -> str:
        return f"ctrlspeak_{stem}_{next(self._tokens)}"

    async def call(self, member: str, signature: str = "", body: list[Any] | None = None, *,
                   interface: str, path: str = PATH, destination: str = PORTAL) -> list[Any]:
        from dbus_fast import Message, MessageType

        reply = await self._bus.call(Message(destination=destination, path=path, interface=interface,
                                             member=member, signature=signature, body=body or []))
        if reply.message_type == MessageType.ERROR:
            detail = reply.body[0] if reply.body else ""
            raise PortalError(f"{reply.error_name}: {detail}" if detail else reply.error_name)
        return list(reply.body)

    async def request(self, interface: str, member: str, signature: str, body: list[Any],
                      token: str) -> tuple[int, dict[str, Any]]:
        """Call a Request-returning method (``token`` is its handle_token) and wait for Response."""
        future = self._loop.create_future()
        self._waits[request_path(self._bus.unique_name, token)] = future
        reply = await self.call(member, signature, body, interface=interface)
        if str(reply[0]) not in self._waits and not future.done():  # a portal older than the path rule
            self._waits[str(reply[0])] = future
        return await future

    async def get_property(self, interface: str, prop: str) -> Any:
        body = await self.call("Get", "ss", [interface, prop], interface="org.freedesktop.DBus.Properties")
        return plain(body[0])

    def end(self, session: str | None) -> None:
        """Close ``session`` (the desktop drops what it granted), then the connection."""
        if session is not None:
            try:
                self.run(self.call("Close", path=session, interface=SESSION_IFACE), 1.0)
            except Exception:  # noqa: BLE001 - the desktop ends the session with our connection anyway
                pass
        self.close()

    def close(self) -> None:
        """Idempotent: disconnects and ends the loop thread."""
        def shut() -> None:
            if self._bus is not None:
                self._bus.disconnect()
            self._loop.stop()

        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(shut)
            if self._thread is not threading.current_thread():
                self._thread.join(JOIN_TIMEOUT_S)

    async def _connect(self, matches: tuple[str, ...]) -> None:
        from dbus_fast.aio import MessageBus

        try:
            self._bus = await MessageBus(bus_address=self._address).connect()
        except Exception as exc:  # noqa: BLE001 - no bus, a refused one: one line each
            raise PortalError(f"no D-Bus session bus ({exc or type(exc).__name__})") from exc
        self._bus.add_message_handler(self._on_message)
        for rule in (f"type='signal',interface='{REQUEST_IFACE}',member='Response'", *matches):
            await self.call("AddMatch", "s", [rule], interface="org.freedesktop.DBus",
                            path="/org/freedesktop/DBus", destination="org.freedesktop.DBus")

    def _on_message(self, msg: Any) -> None:
        from dbus_fast import MessageType

        if msg.message_type != MessageType.SIGNAL:
            return
        if msg.interface == REQUEST_IFACE and msg.member == "Response":
            future = self._waits.pop(msg.path, None)
            if future is not None and not future.done():
                future.set_result((int(msg.body[0]), dict(msg.body[1])))
            return
        for handler in self._handlers:
            handler(msg)
