"""Which keys paste into an application: Ctrl+Shift+V in a terminal, Ctrl+V elsewhere.

    choose_chord(names, table) -> "ctrl+v" | "ctrl+shift+v" | "shift+insert" | "type"

A terminal reads Ctrl+V as a literal byte (0x16, "quote the next key"), so pasting there takes
Ctrl+Shift+V. ``names`` are the focused app's names (``focus.FocusedApp.names``); ``table`` is
the config's ``[paste_chord]``, which wins over the built-in terminal list. "type" means the app
gets the text typed instead of pasted (an editor that binds both chords, say). xterm and rxvt
get "type" by default: out of the box no key of theirs pastes the CLIPBOARD (Ctrl+Shift+V sends
0x16, Shift+Insert pastes PRIMARY; measured with xterm 379 in tests/desktop/test_paste_x11.py).

Pure functions: what is focused and how keys are sent are other modules' business.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

#: what a ``[paste_chord]`` value may be
CHORDS = ("ctrl+v", "ctrl+shift+v", "shift+insert", "type")
DEFAULT_CHORD = "ctrl+v"
TERMINAL_CHORD = "ctrl+shift+v"

#: WM_CLASS parts and Wayland app_ids of common terminals, lower case; a name matches when it
#: equals one of them ignoring case (never a substring: "st" must not match "firefox-esr-st...")
TERMINALS = frozenset({
    "gnome-terminal", "gnome-terminal-server", "org.gnome.terminal",
    "org.gnome.console", "kgx", "org.gnome.ptyxis", "ptyxis",
    "konsole", "org.kde.konsole",
    "xterm", "uxterm", "urxvt", "rxvt", "rxvt-unicode",
    "alacritty", "kitty", "foot", "footclient",
    "wezterm", "org.wezfurlong.wezterm", "wezterm-gui",
    "tilix", "com.gexperts.tilix", "terminator", "xfce4-terminal", "lxterminal", "mate-terminal",
    "qterminal", "st", "st-256color", "sakura", "terminology", "guake", "tilda",
    "yakuake", "org.kde.yakuake", "cool-retro-term",
    "ghostty", "com.mitchellh.ghostty", "warp", "dev.warp.warp", "contour", "org.contourterminal.contour",
    "rio", "blackbox", "com.raggesilver.blackbox",
})


#: terminals whose own keys paste only PRIMARY unless configured: the text is typed into them
TYPED_TERMINALS = frozenset({"xterm", "uxterm", "urxvt", "rxvt", "rxvt-unicode"})


def is_terminal(names: Iterable[str]) -> bool:
    return any(name.casefold() in TERMINALS for name in names)


def table_chord(names: Sequence[str], table: Sequence[tuple[str, str]]) -> str | None:
    """The table's chord for the first entry naming the app (ignoring case), or None."""
    folded = {name.casefold() for name in names}
    for app, chord in table:
        if app.casefold() in folded:
            return chord
    return None


def choose_chord(names: Sequence[str], table: Sequence[tuple[str, str]] = ()) -> str:
    """The chord for the app called ``names``; () (unknown app) gets the ordinary Ctrl+V."""
    chosen = table_chord(names, table)
    if chosen is not None:
        return chosen
    if any(name.casefold() in TYPED_TERMINALS for name in names):
        return "type"
    return TERMINAL_CHORD if is_terminal(names) else DEFAULT_CHORD


def chord_problem(chord: object) -> str | None:
    """Why ``chord`` is not a valid ``[paste_chord]`` value, or None."""
    if chord in CHORDS:
        return None
    return f"must be one of {', '.join(CHORDS)}, not {chord!r}"


def parse_table_text(text: str) -> list[tuple[str, str]]:
    """``"app=chord,app=chord"`` (CTRLSPEAK_PASTE_CHORD) as pairs; ValueError names a bad part.
    Chords are lower-cased and stripped; whether they are valid is :func:`chord_problem`'s call."""
    pairs: list[tuple[str, str]] = []
    for part in text.split(","):
        if not part.strip():
            continue
        app, sep, chord = part.partition("=")
        if not sep or not app.strip():
            raise ValueError(f"{part.strip()!r} is not app=chord")
        pairs.append((app.strip(), chord.strip().lower()))
    return pairs
