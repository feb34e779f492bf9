"""Keys through xdg-desktop-portal's RemoteDesktop interface: paste and type on GNOME and KDE.

GNOME's and KDE's compositors give ordinary programs no virtual keyboard (wtype's protocol);
their portal's RemoteDesktop session does, once the person allows it. We ask for a keyboard
only (``types`` 1) and to be remembered (``persist_mode`` 2): the desktop's answer carries a
``restore_token``, kept in the state directory, so later daemon runs get the session back
without a dialog. Keys go as keysyms (``NotifyKeyboardKeysym``), which the compositor maps
through the person's own layout: the paste is Ctrl and the key that types "v" on AZERTY and
Dvorak too, unlike ydotool's physical codes.

The session starts in the background when the daemon starts, since the first run shows the
desktop's dialog; until it is granted the next tool in line (ydotool, else the clipboard)
serves. Transcripts are never logged; the keysyms are the text, so they are not either.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from ctrlspeak import errors
from ctrlspeak.desktop.portal import CANCELLED, SESSION_IFACE, PortalBus, PortalError, plain

log = logging.getLogger(__name__)

IFACE = "org.freedesktop.portal.RemoteDesktop"
KEYBOARD = 1  # the device type bit: keyboard only, no pointer, no screen
PERSIST_UNTIL_REVOKED = 2
#: the person may take a while over the desktop's dialog
GRANT_TIMEOUT_S = 300.0
CALL_TIMEOUT_S = 5.0

#: X keysyms (X11/keysymdef.h)
_KEYSYMS = {"ctrl": 0xFFE3, "shift": 0xFFE1, "v": 0x0076, "insert": 0xFF63, "\n": 0xFF0D, "\t": 0xFF09}


def keysym(char: str) -> int:
    """The keysym that types ``char``: Latin-1 as itself, the rest as Unicode keysyms."""
    if char in _KEYSYMS and len(char) == 1:
        return _KEYSYMS[char]
    code = ord(char)
    if 0x20 <= code <= 0x7E or 0xA0 <= code <= 0xFF:
        return code
    return 0x01000000 | code


def chord_events(chord: str) -> list[tuple[int, int]]:
    """(keysym, 1 pressed / 0 released) for "ctrl+v", "ctrl+shift+v" or "shift+insert"."""
    keys = [_KEYSYMS[name] for name in chord.split("+")]
    return [(k, 1) for k in keys] + [(k, 0) for k in reversed(keys)]


def text_events(text: str) -> Iterator[tuple[int, int]]:
    for char in text:
        if char == "\r":
            continue
        yield keysym(char), 1
        yield keysym(char), 0


class PortalKeyboard:
    """A RemoteDesktop keyboard session, started in the background; ``ready`` once granted."""

    name = "portal"

    def __init__(self, bus_address: str | None, token_file: Path,
                 say: Callable[[str], None] | None = None) -> None:
        self._bus_address = bus_address
        self._token_file = token_file
        self._say = say or (lambda message: log.warning("%s", message))
        self._lock = threading.Lock()
        self._bus: PortalBus | None = None
        self._session: str | None = None
        self._closed = False

    @property
    def ready(self) -> bool:
        with self._lock:
            return self._session is not None and self._bus is not None and self._bus.alive

    def start(self) -> None:
        """Asks for the session on a thread of its own: the first time, the desktop asks the person."""
        threading.Thread(target=self._open, name="ctrlspeak-portal-input", daemon=True).start()

    def chord(self, chord: str) -> None:
        self._send(chord_events(chord), CALL_TIMEOUT_S)

    def type(self, text: str) -> None:
        self._send(list(text_events(text)), CALL_TIMEOUT_S + 0.02 * len(text))

    def close(self) -> None:
        with self._lock:
            bus, session, self._bus, self._session, self._closed = self._bus, self._session, None, None, True
        if bus is not None:
            bus.end(session)

    # -- internals --------------------------------------------------------------------------

    def _send(self, events: list[tuple[int, int]], timeout: float) -> None:
        with self._lock:
            bus, session = self._bus, self._session
        if bus is None or session is None:
            raise errors.PasteFailed("the desktop's remote keyboard session is not open")

        async def send() -> None:
            for sym, state in events:
                await bus.call("NotifyKeyboardKeysym", "oa{sv}iu", [session, {}, sym, state], interface=IFACE)

        try:
            bus.run(send(), timeout)
        except Exception as exc:  # noqa: BLE001 - a refusal or a dropped bus: the text goes to the clipboard
            raise errors.PasteFailed(f"the desktop portal refused the keys ({exc})") from exc

    def _open(self) -> None:
        try:
            bus = PortalBus.open(self._bus_address, name="ctrlspeak-portal-input",
                                 matches=(f"type='signal',interface='{SESSION_IFACE}'",))
        except PortalError as exc:
            log.info("no remote keyboard through the portal: %s", exc)
            return
        with self._lock:
            if self._closed:
                bus.close()
                return
            self._bus = bus
        try:
            session, token = bus.run(self._grant(bus), GRANT_TIMEOUT_S)
        except Exception as exc:  # noqa: BLE001 - refused, absent, malformed or a dropped bus: next tool
            with self._lock:
                self._bus = None
            bus.close()
            if isinstance(exc, _Refused):
                self._say(str(exc))
            else:  # no RemoteDesktop on this desktop: the next tool in line serves, as before
                log.info("no remote keyboard through the portal: %s", exc)
            return
        if token:
            self._save_token(token)
        with self._lock:
            if not self._closed:
                self._session = session
        log.info("remote keyboard granted by the desktop portal")

    async def _grant(self, bus: PortalBus) -> tuple[str, str]:
        from dbus_fast import Variant

        token = bus.token("input")
        code, results = await bus.request(IFACE, "CreateSession", "a{sv}", [{
            "handle_token": Variant("s", token), "session_handle_token": Variant("s", bus.token("input_session"))}],
            token)
        if code != 0:
            raise PortalError(f"CreateSession answered {code}")
        session = str(plain(results["session_handle"]))
        options = {"types": Variant("u", KEYBOARD), "persist_mode": Variant("u", PERSIST_UNTIL_REVOKED)}
        restore = self._load_token()
        if restore:
            options["restore_token"] = Variant("s", restore)
        token = bus.token("devices")
        code, _ = await bus.request(IFACE, "SelectDevices", "oa{sv}",
                                    [session, {**options, "handle_token": Variant("s", token)}], token)
        if code != 0:
            raise PortalError(f"SelectDevices answered {code}")
        token = bus.token("start")
        code, results = await bus.request(IFACE, "Start", "osa{sv}",
                                          [session, "", {"handle_token": Variant("s", token)}], token)
        if code != 0 or not int(plain(results.get("devices", 0))) & KEYBOARD:
            raise _Refused("the desktop did not allow ctrlspeak to type (its remote-control dialog was "
                           + ("cancelled" if code == CANCELLED else "refused") + "): pasting falls back "
                           "to ydotool or the clipboard; restart ctrlspeak to be asked again")
        return session, str(plain(results.get("restore_token", "")))

    def _load_token(self) -> str:
        try:
            return self._token_file.read_text().strip()
        except OSError:
            return ""

    def _save_token(self, token: str) -> None:
        # the token lets this user's later runs type without asking: private to them
        try:
            self._token_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._token_file.touch(mode=0o600)
            self._token_file.write_text(token + "\n")
        except OSError as exc:
            log.warning("could not keep the portal's restore token (%s): the desktop will ask again", exc)


class _Refused(Exception):
    """The person (or the desktop) said no: worth telling them, once."""
