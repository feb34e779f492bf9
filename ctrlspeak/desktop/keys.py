"""Key names: a pynput key as the one lowercase name the tap detector and the modifier state use.

Pure (no pynput import, no display): tests feed it plain objects with ``name``/``char``/``vk``.
"""
from __future__ import annotations

import enum
import sys

_MODIFIER_FAMILIES = frozenset({"ctrl", "shift", "alt", "cmd"})
# X11 keysyms pynput reports as a bare KeyCode although they are a named modifier:
# AltGr sends ISO_Level3_Shift on most layouts (pynput's Key.alt_gr is Mode_switch).
_X11_KEYSYM_NAMES = {0xFE03: "alt_gr"}


def key_name(key: object) -> str:
    """A pynput ``Key``/``KeyCode`` (or None) as a normalised lowercase name.

    ``Key.ctrl`` -> "ctrl" (pynput's name for the left Ctrl on X11 and macOS),
    ``Key.ctrl_r`` -> "ctrl_r", ``KeyCode(char="A")`` -> "a", a KeyCode without a
    character -> "vk<code>", None (pynput could not decode the key) -> "unknown".
    """
    if key is None:
        return "unknown"
    if isinstance(key, enum.Enum):
        return key.name.lower()
    char = getattr(key, "char", None)
    if isinstance(char, str) and char:
        # Shift+A arrives as "A" but its release as "a": one name for both
        return char.lower()
    vk = getattr(key, "vk", None)
    if vk is None:
        return "unknown"
    if sys.platform not in ("darwin", "win32") and vk in _X11_KEYSYM_NAMES:
        return _X11_KEYSYM_NAMES[vk]
    return f"vk{vk}"


def is_modifier(name: str) -> bool:
    return name.split("_", 1)[0] in _MODIFIER_FAMILIES
