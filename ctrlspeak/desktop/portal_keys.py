"""A global shortcut through xdg-desktop-portal's GlobalShortcuts interface (D-Bus).

Where the kernel's input devices are closed to us and the compositor has no IPC we can follow
(KDE Plasma, GNOME 48 and later, Hyprland's portal), the desktop itself can own a shortcut for
us: we ask the portal for one ("ctrlspeak-toggle"), the desktop lets the person pick its keys,
and the portal signals ``Activated`` when they are pressed and ``Deactivated`` when released.
The portal never reports single keys, so a triple tap of Ctrl cannot be asked for: this source
taps one virtual key, KEY, and the daemon counts one tap as a toggle (in hold mode, Activated
is the press and Deactivated the release).

Protocol (xdg-desktop-portal's documentation; the Request/Response pattern in
:mod:`ctrlspeak.desktop.portal`): CreateSession's result names the session (a string, for
historical reasons), BindShortcuts's the shortcuts as bound, each with the desktop's own
``trigger_description``.

Threads: the :class:`~ctrlspeak.desktop.portal.PortalBus` thread "ctrlspeak-portal-keys".
``start`` waits for the connection and the session, so a missing portal is an error the caller
sees at once; the binding itself may wait on a dialog the desktop shows, so its outcome arrives
later through ``say`` (one line for the person). Shortcut ids and triggers are ours, never the
person's keystrokes, so they may be logged.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from typing import Any

from ctrlspeak import errors
from ctrlspeak.desktop.portal import CANCELLED, SESSION_IFACE, PortalBus, PortalError, plain

log = logging.getLogger(__name__)

IFACE = "org.freedesktop.portal.GlobalShortcuts"
SHORTCUT_ID = "ctrlspeak-toggle"
PREFERRED_TRIGGER = "CTRL+ALT+D"
#: the key name this source taps; not a modifier, so no paste waits on it
KEY = "portal"
START_TIMEOUT_S = 5.0


def bound_message(code: int, results: Mapping[str, Any], desktop: str) -> str:
    """One line for the person after BindShortcuts answered: which keys toggle dictation, or
    why none do and what to do."""
    if code == CANCELLED:
        return ("the desktop's shortcut dialog was cancelled: no global shortcut for ctrlspeak; "
                "restart ctrlspeak to be asked again, or bind `ctrlspeak toggle` to a desktop shortcut")
    if code != 0:
        return ("the desktop portal refused ctrlspeak's global shortcut; bind `ctrlspeak toggle` "
                "to a desktop shortcut instead")
    trigger = ""
    for shortcut_id, props in plain(results.get("shortcuts")) or []:
        if shortcut_id == SHORTCUT_ID:
            trigger = str(plain(props.get("trigger_description", ""))).strip()
    if desktop == "hyprland":
        # Hyprland's portal registers every shortcut and fires none until the config binds it
        return (f"Hyprland registered the shortcut {SHORTCUT_ID} but fires it only for a bind in "
                f"hyprland.conf: `bind = CTRL ALT, D, global, :{SHORTCUT_ID}` (`hyprctl "
                f"globalshortcuts` shows the exact name), then `hyprctl reload`")
    if not trigger:
        return (f"the desktop registered ctrlspeak's shortcut ({SHORTCUT_ID}) without keys: give it "
                f"keys in the desktop's keyboard shortcut settings")
    return f"global keys: {trigger} toggles dictation (a desktop shortcut, through xdg-desktop-portal)"


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
        self._bus: PortalBus | None = None
        self._session: str | None = None

    @property
    def alive(self) -> bool:
        with self._lock:
            bus = self._bus
        return bus is not None and bus.alive

    def start(self, press: Callable[[str], None], release: Callable[[str], None]) -> None:
        self.stop()
        try:
            bus = PortalBus.open(self._bus_address, name="ctrlspeak-portal-keys",
                                 matches=(f"type='signal',interface='{IFACE}'",
                                          f"type='signal',interface='{SESSION_IFACE}'"))
        except PortalError as exc:
            raise errors.HotkeyUnavailable(unavailable_message(str(exc))) from exc
        try:
            session = bus.run(self._create_session(bus), START_TIMEOUT_S)
        except Exception as exc:  # noqa: BLE001 - an error, a malformed answer, a dropped bus: no keys, said
            bus.close()
            raise errors.HotkeyUnavailable(unavailable_message(
                f"this desktop offers no GlobalShortcuts portal ({exc})")) from exc
        bus.on_signal(lambda msg: self._on_signal(msg, session, press, release))
        with self._lock:
            self._bus, self._session = bus, session
        bus.submit(self._bind(bus, session)).add_done_callback(self._said_bound)

    def stop(self) -> None:
        """Idempotent; closes the session (the desktop drops the shortcut) and the connection."""
        with self._lock:
            bus, session = self._bus, self._session
            self._bus = self._session = None
        if bus is not None:
            bus.end(session)

    # -- the bus's thread -----------------------------------------------------------------

    async def _create_session(self, bus: PortalBus) -> str:
        from dbus_fast import Variant

        log.info("xdg-desktop-portal GlobalShortcuts version %s", await bus.get_property(IFACE, "version"))
        token = bus.token("keys")
        code, results = await bus.request(IFACE, "CreateSession", "a{sv}", [{
            "handle_token": Variant("s", token), "session_handle_token": Variant("s", bus.token("keys_session"))}],
            token)
        if code != 0:
            raise PortalError(f"CreateSession answered {code}")
        return str(plain(results["session_handle"]))

    async def _bind(self, bus: PortalBus, session: str) -> tuple[int, dict[str, Any]]:
        from dbus_fast import Variant

        token = bus.token("bind")
        shortcut = (SHORTCUT_ID, {"description": Variant("s", "Start or stop a ctrlspeak dictation"),
                                  "preferred_trigger": Variant("s", PREFERRED_TRIGGER)})
        return await bus.request(IFACE, "BindShortcuts", "oa(sa{sv})sa{sv}",
                                 [session, [shortcut], "", {"handle_token": Variant("s", token)}], token)

    def _on_signal(self, msg: Any, session: str, press: Callable[[str], None],
                   release: Callable[[str], None]) -> None:
        if msg.interface == IFACE and msg.body[:2] == [session, SHORTCUT_ID]:
            if msg.member == "Activated":
                press(KEY)
                if not self._hold:
                    release(KEY)
            elif msg.member == "Deactivated" and self._hold:
                release(KEY)
        elif msg.interface == SESSION_IFACE and msg.member == "Closed" and msg.path == session:
            self._say("the desktop closed ctrlspeak's shortcut session: global keys stopped "
                      "(restart ctrlspeak to get them back)")

    def _said_bound(self, future: Future) -> None:
        if future.cancelled():
            return
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
