"""How each key tool sends a paste chord or types text, and which tool a Wayland session has.

Pure functions: argument lists and a choice made from the environment; output.py runs them.

    xdotool   X11: key names, ``--clearmodifiers`` releases what the person still holds
    wtype     Wayland compositors with the virtual-keyboard protocol (sway, Hyprland, other
              wlroots ones); GNOME and KDE do not offer it
    ydotool   any Wayland desktop, through /dev/uinput and its daemon ``ydotoold``; it sends
              physical key codes (ydotool 1.x syntax), so the chord is Ctrl plus the key in the
              V *position* of a US layout: on AZERTY, Dvorak... that key is not V
"""
from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from ctrlspeak.desktop.clipboard import which

#: xdotool key names for each chord
XDOTOOL_KEYS = {"ctrl+v": "ctrl+v", "ctrl+shift+v": "ctrl+shift+v", "shift+insert": "shift+Insert"}

# wtype: -s 30 waits before the first key (without it the first key was lost in 13 of 20 runs
# on sway); the release of the unused F20 at the end is there because GTK skips the last new key
# of a wtype command for shortcuts (wtype builds a keymap per command and that key gets the
# highest code), so a bare "-M ctrl -k v -m ctrl" pastes nothing into a GTK app.
# /work/shared/notes/wayland-testing.md has the measurements.
WTYPE_DELAY = ("-s", "30")
WTYPE_CHORDS: dict[str, tuple[str, ...]] = {
    "ctrl+v": ("-M", "ctrl", "-k", "v", "-m", "ctrl", "-p", "F20"),
    "ctrl+shift+v": ("-M", "ctrl", "-M", "shift", "-k", "v", "-m", "shift", "-m", "ctrl", "-p", "F20"),
    "shift+insert": ("-M", "shift", "-k", "Insert", "-m", "shift", "-p", "F20"),
}

# Linux input key codes (linux/input-event-codes.h): 29 KEY_LEFTCTRL, 42 KEY_LEFTSHIFT,
# 47 KEY_V, 110 KEY_INSERT; "code:1" presses, "code:0" releases.
YDOTOOL_CHORDS: dict[str, tuple[str, ...]] = {
    "ctrl+v": ("29:1", "47:1", "47:0", "29:0"),
    "ctrl+shift+v": ("29:1", "42:1", "47:1", "47:0", "42:0", "29:0"),
    "shift+insert": ("42:1", "110:1", "110:0", "42:0"),
}

#: what to say, once, when a Wayland session has no tool to paste or type with
WAYLAND_NO_KEYER = ("install wtype (sway, Hyprland), or on GNOME and KDE allow ctrlspeak's remote-keyboard "
                    "request (restart ctrlspeak to be asked again) or run ydotoold")


def xdotool_chord(xdotool: str, chord: str) -> list[str]:
    return [xdotool, "key", "--clearmodifiers", XDOTOOL_KEYS[chord]]


def wtype_chord(wtype: str, chord: str) -> list[str]:
    return [wtype, *WTYPE_DELAY, *WTYPE_CHORDS[chord]]


def wtype_type(wtype: str, text: str) -> list[str]:
    # wtype (as of 0.4) takes text only in argv; "--" stops "-k..." being read as options.
    return [wtype, *WTYPE_DELAY, "--", text]


def ydotool_chord(ydotool: str, chord: str) -> list[str]:
    return [ydotool, "key", *YDOTOOL_CHORDS[chord]]


def ydotool_type(ydotool: str) -> list[str]:
    # The text goes on stdin ("--file -"), out of argv, which other users can read in /proc.
    return [ydotool, "type", "--file", "-"]


def ydotool_can_type(text: str) -> bool:
    """ydotool types through its own table of ASCII characters to US key positions: anything
    else (accents, CJK) would be dropped, so such text is left on the clipboard instead."""
    return text.isascii()


@dataclass(frozen=True)
class Keyer:
    """A Wayland key tool found for this session: name ("wtype", "ydotool"), its path, and the
    environment it needs on top of the session's (ydotool: where its daemon's socket is)."""

    name: str
    path: str
    env: Mapping[str, str] = field(default_factory=dict)


def ydotool_socket(env: Mapping[str, str], *, uid: int | None = None,
                   exists: Callable[[str], bool] = os.path.exists) -> str | None:
    """The socket of a running ydotoold, or None: $YDOTOOL_SOCKET, then where ydotoold puts it
    ($XDG_RUNTIME_DIR, /run/user/UID, /tmp)."""
    uid = os.getuid() if uid is None else uid
    candidates = [env.get("YDOTOOL_SOCKET", "")]
    if env.get("XDG_RUNTIME_DIR"):
        candidates.append(os.path.join(env["XDG_RUNTIME_DIR"], ".ydotool_socket"))
    candidates += [f"/run/user/{uid}/.ydotool_socket", "/tmp/.ydotool_socket"]
    return next((path for path in candidates if path and exists(path)), None)


def no_virtual_keyboard(env: Mapping[str, str]) -> bool:
    """GNOME and KDE: their compositors do not offer the protocol wtype needs."""
    desktops = {part.strip().upper() for part in env.get("XDG_CURRENT_DESKTOP", "").split(":")}
    return bool(desktops & {"GNOME", "KDE"})


def wayland_keyer(env: Mapping[str, str], *, uid: int | None = None,
                  exists: Callable[[str], bool] = os.path.exists) -> Keyer | None:
    """wtype where the compositor can take it, else ydotool when its daemon runs, else None."""
    wtype = which("wtype", env)
    if wtype and not no_virtual_keyboard(env):
        return Keyer("wtype", wtype)
    ydotool = which("ydotool", env)
    socket = ydotool_socket(env, uid=uid, exists=exists) if ydotool else None
    if ydotool and socket:
        return Keyer("ydotool", ydotool, {"YDOTOOL_SOCKET": socket})
    return None


def chord_args(keyer: Keyer, chord: str) -> list[str]:
    return wtype_chord(keyer.path, chord) if keyer.name == "wtype" else ydotool_chord(keyer.path, chord)


def type_args(keyer: Keyer, text: str) -> tuple[list[str], str | None]:
    """(argv, stdin text) to type ``text`` with ``keyer``."""
    if keyer.name == "wtype":
        return wtype_type(keyer.path, text), None
    return ydotool_type(keyer.path), text

