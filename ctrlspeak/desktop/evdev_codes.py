"""The kernel's input events, pure: which devices are keyboards, and raw ``input_event`` records as key names.

No evdev import, no file descriptors: the codes are the kernel's own
(``linux/input-event-codes.h``, stable ABI), so tests feed captured capability dicts and
packed bytes. :mod:`ctrlspeak.desktop.evdev_keys` reads the devices and uses these.

Only keys the tap detector needs get a name (the names of :mod:`ctrlspeak.desktop.keys`):
the modifiers, letters, digits and the few keys typed between Ctrl taps that should break
a sequence (space, enter...). Anything else decodes to None and is ignored.
"""
from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping

#: ``struct input_event`` on 64-bit Linux: struct timeval (two longs), __u16 type, __u16 code, __s32 value
EVENT = struct.Struct("llHHi")

EV_SYN, EV_KEY, EV_REL, EV_ABS, EV_MSC, EV_SW, EV_LED, EV_REP = 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x11, 0x14
KEY_RELEASE, KEY_PRESS, KEY_REPEAT = 0, 1, 2

KEY_LEFTCTRL, KEY_RIGHTCTRL = 29, 97
KEY_LEFTSHIFT, KEY_RIGHTSHIFT = 42, 54
KEY_LEFTALT, KEY_RIGHTALT = 56, 100
KEY_LEFTMETA, KEY_RIGHTMETA = 125, 126

# Kernel codes follow the physical rows of a US keyboard, not the alphabet. The name is the
# key's position, not what the layout prints on it: for the detector, only "another key" matters.
_LETTER_CODES = {
    "q": 16, "w": 17, "e": 18, "r": 19, "t": 20, "y": 21, "u": 22, "i": 23, "o": 24, "p": 25,
    "a": 30, "s": 31, "d": 32, "f": 33, "g": 34, "h": 35, "j": 36, "k": 37, "l": 38,
    "z": 44, "x": 45, "c": 46, "v": 47, "b": 48, "n": 49, "m": 50,
}
_DIGIT_CODES = {"1": 2, "2": 3, "3": 4, "4": 5, "5": 6, "6": 7, "7": 8, "8": 9, "9": 10, "0": 11}

#: kernel key code -> the name :mod:`ctrlspeak.desktop.keys` gives the same key through pynput
KEY_NAMES: dict[int, str] = {
    KEY_LEFTCTRL: "ctrl", KEY_RIGHTCTRL: "ctrl_r",
    KEY_LEFTSHIFT: "shift", KEY_RIGHTSHIFT: "shift_r",
    KEY_LEFTALT: "alt", KEY_RIGHTALT: "alt_r",
    KEY_LEFTMETA: "cmd", KEY_RIGHTMETA: "cmd_r",  # pynput names the Super key cmd on Linux too
    1: "esc", 14: "backspace", 15: "tab", 28: "enter", 57: "space", 58: "caps_lock",
    **{code: name for name, code in _LETTER_CODES.items()},
    **{code: name for name, code in _DIGIT_CODES.items()},
}

LETTER_CODES = frozenset(_LETTER_CODES.values())
CTRL_CODES = frozenset({KEY_LEFTCTRL, KEY_RIGHTCTRL})


def _codes(entries: Iterable[object]) -> set[int]:
    # evdev lists plain codes for EV_KEY, (code, AbsInfo) pairs for EV_ABS
    return {e[0] if isinstance(e, tuple) else e for e in entries}  # type: ignore[index,misc]


def is_keyboard(capabilities: Mapping[int, Iterable[object]]) -> bool:
    """Whether a device with these capabilities (evdev's ``device.capabilities()``) is a keyboard.

    A keyboard reports every letter and a Ctrl. That leaves out mice (buttons only), the
    power and sleep buttons (one key each), lid and tablet switches (EV_SW, no keys) and
    multimedia remotes, so none of them is ever opened for reading longer than this check.
    """
    keys = _codes(capabilities.get(EV_KEY, ()))
    return LETTER_CODES <= keys and bool(CTRL_CODES & keys)


def decode(record: bytes) -> tuple[str, bool] | None:
    """One ``input_event`` as (key name, pressed) or None.

    None for what the detector does not use: other event types (EV_SYN, EV_MSC scan codes,
    EV_LED...), key repeats (value 2: the detector sees a held key by its press and release
    times) and key codes without a name here.
    """
    _sec, _usec, type_, code, value = EVENT.unpack(record)
    if type_ != EV_KEY or value not in (KEY_PRESS, KEY_RELEASE):
        return None
    name = KEY_NAMES.get(code)
    if name is None:
        return None
    return name, value == KEY_PRESS


def decode_many(buffer: bytes) -> tuple[list[tuple[str, bool]], bytes]:
    """Every whole record in ``buffer`` decoded (Nones dropped), and the incomplete tail left over.

    A real device returns whole records per read; a tail only happens with a pipe standing
    in for one, but keeping it costs nothing and never misaligns the records that follow.
    """
    whole = len(buffer) - len(buffer) % EVENT.size
    keys = []
    for offset in range(0, whole, EVENT.size):
        key = decode(buffer[offset:offset + EVENT.size])
        if key is not None:
            keys.append(key)
    return keys, buffer[whole:]


def pack(type_: int, code: int, value: int, sec: int = 0, usec: int = 0) -> bytes:
    """An ``input_event`` record as the kernel writes it (for tests and fakes)."""
    return EVENT.pack(sec, usec, type_, code, value)
