"""A private D-Bus session bus and a fake xdg-desktop-portal (GlobalShortcuts, RemoteDesktop) on it.

The bus is the real dbus-daemon (the desktop stack installs it); only the portal is ours. It
follows the portal's documented protocol: every call answers with a Request path built from the
caller's unique name and handle_token, then a Response signal on that path.
"""
from __future__ import annotations

import asyncio
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any

from ctrlspeak.desktop import portal
from ctrlspeak.desktop import portal_input as pi
from ctrlspeak.desktop import portal_keys as pk


class SessionBus:
    """``dbus-daemon --session`` on a socket under ``folder``; ``address`` to connect to it."""

    def __init__(self, folder: Path) -> None:
        daemon = shutil.which("dbus-daemon")
        assert daemon, "dbus-daemon is missing: scripts/setup.sh installs the dbus package"
        self.address = f"unix:path={folder / 'bus'}"
        self._proc = subprocess.Popen([daemon, "--session", "--nofork", f"--address={self.address}",
                                       "--print-address=1"], stdout=subprocess.PIPE, text=True)
        line = self._proc.stdout.readline()
        assert line.startswith("unix:"), f"dbus-daemon did not start: {line!r}"

    def close(self) -> None:
        self._proc.terminate()
        self._proc.wait(5)


class FakePortal:
    """The GlobalShortcuts portal, answering from its own thread and loop.

    ``bind_code`` is BindShortcuts's Response code (0 bound, 1 the person cancelled);
    ``interface=False`` makes it a portal without GlobalShortcuts (an older GNOME's).
    ``calls`` records (member, body) of every call made to it.
    """

    def __init__(self, address: str, *, bind_code: int = 0, trigger: str = "Ctrl+Alt+D",
                 interface: bool = True, remote: bool = True, start_code: int = 0) -> None:
        self.bind_code, self.trigger, self.interface = bind_code, trigger, interface
        self.remote, self.start_code = remote, start_code
        self.calls: list[tuple[str, list[Any]]] = []
        self.session: str | None = None
        #: RemoteDesktop: (keysym, state) in the order they came, and the restore tokens handed out
        self.keys: list[tuple[int, int]] = []
        self.tokens: list[str] = []
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._open(address), self._loop).result(5)

    async def _open(self, address: str) -> None:
        from dbus_fast.aio import MessageBus

        self._bus = await MessageBus(bus_address=address).connect()
        self._bus.add_message_handler(self._on_message)
        await self._bus.request_name(portal.PORTAL)

    def _on_message(self, msg: Any) -> Any:
        from dbus_fast import Message, MessageType, Variant

        if msg.message_type != MessageType.METHOD_CALL:
            return None
        self.calls.append((msg.member, list(msg.body)))
        if msg.member == "Get" and msg.body[0] == pk.IFACE:
            if not self.interface:
                return Message.new_error(msg, "org.freedesktop.DBus.Error.UnknownInterface", "no such interface")
            return Message.new_method_return(msg, "v", [Variant("u", 1)])
        if msg.interface == pi.IFACE:
            return self._remote_desktop(msg) if self.remote else Message.new_error(
                msg, "org.freedesktop.DBus.Error.UnknownMethod", f"no {pi.IFACE}")
        if msg.member == "CreateSession":
            token = msg.body[0]["handle_token"].value
            sender = msg.sender.lstrip(":").replace(".", "_")
            self.session = f"{portal.PATH}/session/{sender}/{msg.body[0]['session_handle_token'].value}"
            return self._answer(msg, token, 0, {"session_handle": Variant("s", self.session)})
        if msg.member == "BindShortcuts":
            shortcuts = [[sid, {"description": props["description"],
                                "trigger_description": Variant("s", self.trigger)}] for sid, props in msg.body[1]]
            return self._answer(msg, msg.body[3]["handle_token"].value, self.bind_code,
                                {"shortcuts": Variant("a(sa{sv})", shortcuts)} if self.bind_code == 0 else {})
        if msg.member == "Close":
            return Message.new_method_return(msg)
        return Message.new_error(msg, "org.freedesktop.DBus.Error.UnknownMethod", msg.member)

    def _remote_desktop(self, msg: Any) -> Any:
        from dbus_fast import Message, Variant

        if msg.member == "CreateSession":
            session = f"{portal.PATH}/session/{msg.sender.lstrip(':').replace('.', '_')}/remote"
            return self._answer(msg, msg.body[0]["handle_token"].value, 0, {"session_handle": Variant("s", session)})
        if msg.member == "SelectDevices":
            return self._answer(msg, msg.body[1]["handle_token"].value, 0, {})
        if msg.member == "Start":
            self.tokens.append(f"restore-{len(self.tokens) + 1}")
            results = {"devices": Variant("u", pi.KEYBOARD), "restore_token": Variant("s", self.tokens[-1])}
            return self._answer(msg, msg.body[2]["handle_token"].value, self.start_code,
                                results if self.start_code == 0 else {})
        if msg.member == "NotifyKeyboardKeysym":
            self.keys.append((msg.body[2], msg.body[3]))
            return Message.new_method_return(msg)
        return Message.new_error(msg, "org.freedesktop.DBus.Error.UnknownMethod", msg.member)

    def _answer(self, msg: Any, token: str, code: int, results: dict[str, Any]) -> Any:
        from dbus_fast import Message

        path = portal.request_path(msg.sender, token)
        # the Response follows the method's reply, as a real portal's does
        self._loop.call_soon(lambda: self._bus.send(Message.new_signal(path, portal.REQUEST_IFACE, "Response", "ua{sv}",
                                                                       [code, results])))
        return Message.new_method_return(msg, "o", [path])

    def emit(self, member: str, *, session: str | None = None, shortcut: str = pk.SHORTCUT_ID) -> None:
        """Activated or Deactivated, as the desktop sends when the keys go down or up."""
        from dbus_fast import Message

        body = [session or self.session, shortcut, 1234, {}]
        signal = Message.new_signal(portal.PATH, pk.IFACE, member, "osta{sv}", body)
        self._loop.call_soon_threadsafe(lambda: self._bus.send(signal))

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._bus.disconnect)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
