"""A global shortcut through xdg-desktop-portal's GlobalShortcuts interface (D-Bus).

Where the kernel's input devices are closed to us and the compositor has no IPC we can follow
(KDE Plasma, GNOME 48 and later, Hyprland's portal), the desktop itself can own a shortcut for
us: we ask the portal for one ("ctrlspeak-toggle"), the desktop lets the person pick its keys,
and the portal signals ``Activated`` when they are pressed and ``Deactivated`` when released.
The portal never reports single keys, so a triple tap of Ctrl cannot be asked for: this source
taps one virtual key, KEY, and the daemon counts one tap as a toggle (in hold mode, Activated
is the press and Deactivated the release).

Protocol (xdg-desktop-portal's documentation): each call returns a Request object path and
answers later with a ``Response(u code, a{sv} results)`` signal on that path, so we subscribe
to Response before calling and key the wait on the path the portal will use,
``/org/freedesktop/portal/desktop/request/SENDER/TOKEN``. CreateSession's result names the
session (a string, for historical reasons), BindShortcuts's the shortcuts as bound, each with
the desktop's own ``trigger_description``.

Threads: one "ctrlspeak-portal-keys" thread runs an asyncio loop for dbus-fast. ``start``
waits for the connection and the session, so a missing portal is an error the caller sees at
once; the binding itself may wait on a dialog the desktop shows, so its outcome arrives later
through ``say`` (one line for the person). Shortcut ids and triggers are ours, never the
person's keystrokes, so they may be logged.
"""
from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

from ctrlspeak import errors

log = logging.getLogger(__name__)

PORTAL = "org.freedesktop.portal.Desktop"
PATH = "/org/freedesktop/portal/desktop"
IFACE = "org.freedesktop.portal.GlobalShortcuts"
REQUEST_IFACE = "org.freedesktop.portal.Request"
SESSION_IFACE = "org.freedesktop.portal.Session"
SHORTCUT_ID = "ctrlspeak-toggle"
PREFERRED_TRIGGER = "CTRL+ALT+D"
#: the key name this source taps; not a modifier, so no paste waits on it
KEY = "portal"
START_TIMEOUT_S = 5.0
JOIN_TIMEOUT_S = 2.0
#: Request.Response codes
_CANCELLED, _OTHER = 1, 2


def request_path(unique_name: str, token: str) -> str:
    """Where the portal puts the Request of a call made with ``handle_token = token``."""
    sender = unique_name.lstrip(":").replace(".", "_")
    return f"{PATH}/request/{sender}/{token}"


def bound_message(code: int, results: Mapping[str, Any], desktop: str) -> str:
    """One line for the person after BindShortcuts answered: which keys toggle dictation, or
    why none do and what to do."""
    if code == _CANCELLED:
        return ("the desktop's shortcut dialog was cancelled: no global shortcut for ctrlspeak; "
                "restart ctrlspeak to be asked again, or bind `ctrlspeak toggle` to a desktop shortcut")
    if code != 0:
        return ("the desktop portal refused ctrlspeak's global shortcut; bind `ctrlspeak toggle` "
                "to a desktop shortcut instead")
    trigger = ""
    for shortcut_id, props in _plain(results.get("shortcuts")) or []:
        if shortcut_id == SHORTCUT_ID:
            trigger = str(_plain(props.get("trigger_description", ""))).strip()
    if desktop == "hyprland":
        # Hyprland's portal registers every shortcut and fires none until the config binds it
        return (f"Hyprland registered the shortcut {SHORTCUT_ID} but fires it only for a bind in "
                f"hyprland.conf: `bind = CTRL ALT, D, global, :{SHORTCUT_ID}` (`hyprctl "
                f"globalshortcuts` shows the exact name), then `hyprctl reload`")
    if not trigger:
        return (f"the desktop registered ctrlspeak's shortcut ({SHORTCUT_ID}) without keys: give it "
                f"keys in the desktop's keyboard shortcut settings")
    return f"global keys: {trigger} toggles dictation (a desktop shortcut, through xdg-desktop-portal)"


def _plain(value: Any) -> Any:
    return getattr(value, "value", value)  # dbus-fast wraps a{sv} values in Variant


class PortalKeys:
    """Key source over the GlobalShortcuts portal: start(press, release), stop(), name, alive."""

    name = "portal"

    def __init__(self, *, hold: bool = False, desktop: str = "other", bus_address: str | None = None,
                 say: Callable[[str], None] | None = None) -> None:
        self._hold = hold
        self._desktop = desktop
        self._bus_address = bus_address
        self._say = say or (lambda message: log.warning("%s", message))
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped: asyncio.Event | None = None

    @property
    def alive(self) -> bool:
        with self._lock:
            thread = self._thread
        return thread is not None and thread.is_alive()

    def start(self, press: Callable[[str], None], release: Callable[[str], None]) -> None:
        self.stop()
        opened: dict[str, Any] = {}
        ready = threading.Event()
        thread = threading.Thread(target=self._run, args=(press, release, opened, ready),
                                  name="ctrlspeak-portal-keys", daemon=True)
        with self._lock:
            self._thread = thread
        thread.start()
        if not ready.wait(START_TIMEOUT_S):
            self.stop()
            raise errors.HotkeyUnavailable(unavailable_message(f"the portal did not answer within {START_TIMEOUT_S:g} s"))
        if "error" in opened:
            self.stop()
            raise errors.HotkeyUnavailable(unavailable_message(opened["error"]))

    def stop(self) -> None:
        """Idempotent; closes the session (the desktop drops the shortcut) and joins the thread."""
        with self._lock:
            thread, loop, stopped = self._thread, self._loop, self._stopped
            self._thread = self._loop = self._stopped = None
        if loop is not None and stopped is not None:
            try:
                loop.call_soon_threadsafe(stopped.set)
            except RuntimeError:
                pass  # the loop already ended (the bus went away)
        if thread is not None and thread is not threading.current_thread():
            thread.join(JOIN_TIMEOUT_S)
            if thread.is_alive():
                log.warning("portal key thread did not stop within %.1f s", JOIN_TIMEOUT_S)

    # -- the loop's thread ----------------------------------------------------------------

    def _run(self, press: Callable[[str], None], release: Callable[[str], None], opened: dict[str, Any],
             ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self._serve(loop, press, release, opened, ready))
        except Exception as exc:  # noqa: BLE001 - whatever ends the loop, start() must hear of it
            opened.setdefault("error", f"the session bus failed ({exc})")
            ready.set()
        finally:
            loop.close()

    async def _serve(self, loop: asyncio.AbstractEventLoop, press: Callable[[str], None],
                     release: Callable[[str], None], opened: dict[str, Any], ready: threading.Event) -> None:
        from dbus_fast import Message, MessageType, Variant
        from dbus_fast.aio import MessageBus

        stopped = asyncio.Event()
        with self._lock:
            self._loop, self._stopped = loop, stopped
        try:
            bus = await asyncio.wait_for(MessageBus(bus_address=self._bus_address).connect(), START_TIMEOUT_S)
        except Exception as exc:  # noqa: BLE001 - no bus, a refused one, a timeout: one line each
            opened["error"] = f"no D-Bus session bus ({exc or type(exc).__name__})"
            ready.set()
            return
        waits: dict[str, asyncio.Future] = {}
        state: dict[str, str] = {}

        def on_message(msg: Message) -> None:
            if msg.message_type != MessageType.SIGNAL:
                return
            if msg.interface == REQUEST_IFACE and msg.member == "Response" and msg.path in waits:
                future = waits.pop(msg.path)
                if not future.done():
                    future.set_result((int(msg.body[0]), dict(msg.body[1])))
            elif msg.interface == IFACE and msg.body[:2] == [state.get("session"), SHORTCUT_ID]:
                if msg.member == "Activated":
                    press(KEY)
                    if not self._hold:
                        release(KEY)
                elif msg.member == "Deactivated" and self._hold:
                    release(KEY)
            elif msg.interface == SESSION_IFACE and msg.member == "Closed" and msg.path == state.get("session"):
                self._say("the desktop closed ctrlspeak's shortcut session: global keys stopped "
                          "(restart ctrlspeak to get them back)")

        async def call(member: str, signature: str, body: list[Any], **kw: Any) -> Message:
            reply = await bus.call(Message(destination=kw.get("destination", PORTAL), path=kw.get("path", PATH),
                                           interface=kw.get("interface", IFACE), member=member,
                                           signature=signature, body=body))
            if reply.message_type == MessageType.ERROR:
                raise ConnectionError(f"{reply.error_name}: {reply.body[0] if reply.body else ''}".rstrip(": "))
            return reply

        async def request(member: str, signature: str, body: list[Any], token: str) -> tuple[int, dict]:
            waits[request_path(bus.unique_name, token)] = future = loop.create_future()
            reply = await call(member, signature, body)
            actual = str(reply.body[0])
            if actual not in waits and not future.done():  # a portal older than the path rule
                waits[actual] = future
            return await future

        bus.add_message_handler(on_message)
        try:
            for rule in (f"type='signal',interface='{REQUEST_IFACE}',member='Response'",
                         f"type='signal',interface='{IFACE}'", f"type='signal',interface='{SESSION_IFACE}'"):
                await call("AddMatch", "s", [rule], destination="org.freedesktop.DBus",
                           path="/org/freedesktop/DBus", interface="org.freedesktop.DBus")
            version = await call("Get", "ss", [IFACE, "version"], interface="org.freedesktop.DBus.Properties")
            log.info("xdg-desktop-portal GlobalShortcuts version %s", _plain(version.body[0]))
            code, results = await asyncio.wait_for(request(
                "CreateSession", "a{sv}", [{"handle_token": Variant("s", "ctrlspeak_session"),
                                            "session_handle_token": Variant("s", "ctrlspeak")}],
                "ctrlspeak_session"), START_TIMEOUT_S)
            if code != 0:
                raise ConnectionError(f"CreateSession answered {code}")
            state["session"] = str(_plain(results["session_handle"]))
        except (ConnectionError, KeyError, asyncio.TimeoutError) as exc:
            opened["error"] = f"this desktop offers no GlobalShortcuts portal ({exc or 'no answer'})"
            ready.set()
            bus.disconnect()
            return
        ready.set()
        shortcut = (SHORTCUT_ID, {"description": Variant("s", "Start or stop a ctrlspeak dictation"),
                                  "preferred_trigger": Variant("s", PREFERRED_TRIGGER)})
        bind = asyncio.ensure_future(request("BindShortcuts", "oa(sa{sv})sa{sv}",
                                             [state["session"], [shortcut], "",
                                              {"handle_token": Variant("s", "ctrlspeak_bind")}], "ctrlspeak_bind"))
        bind.add_done_callback(lambda f: None if f.cancelled() else self._said_bound(f))
        await stopped.wait()
        bind.cancel()
        try:
            await asyncio.wait_for(call("Close", "", [], path=state["session"], interface=SESSION_IFACE), 1.0)
        except Exception:  # noqa: BLE001 - the desktop drops the session with our connection anyway
            pass
        bus.disconnect()

    def _said_bound(self, future: asyncio.Future) -> None:
        if future.exception() is not None:
            self._say(f"the desktop portal could not bind ctrlspeak's shortcut ({future.exception()}); "
                      f"bind `ctrlspeak toggle` to a desktop shortcut instead")
            return
        code, results = future.result()
        self._say(bound_message(code, results, self._desktop))


def unavailable_message(problem: str) -> str:
    return (f"{problem}. The portal key source needs a desktop whose xdg-desktop-portal offers "
            f"GlobalShortcuts (KDE Plasma, GNOME 48 or later, Hyprland); elsewhere bind "
            f"`ctrlspeak toggle` to a desktop shortcut: `ctrlspeak shortcuts` prints how")
