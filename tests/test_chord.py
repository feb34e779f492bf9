"""The paste chord per app (chord.py) and how each tool sends it (keysend.py)."""
from __future__ import annotations

import pytest

from ctrlspeak.desktop import keysend
from ctrlspeak.desktop.chord import CHORDS, choose_chord, chord_problem, is_terminal, parse_table_text


@pytest.mark.parametrize("names", [
    ("gnome-terminal-server", "Gnome-terminal"), ("org.gnome.Console",), ("kgx",), ("org.gnome.Ptyxis",),
    ("konsole", "konsole"), ("org.kde.konsole",), ("Alacritty",),
    ("kitty",), ("foot",), ("footclient",), ("org.wezfurlong.wezterm",), ("st-256color", "St"),
    ("com.mitchellh.ghostty",), ("com.raggesilver.BlackBox",),
])
def test_terminals(names):
    assert is_terminal(names) and choose_chord(names) == "ctrl+shift+v"


@pytest.mark.parametrize("names", [("xterm", "XTerm"), ("ctrlspeaktest", "XTerm"), ("urxvt", "URxvt"), ("uxterm",)])
def test_terminals_that_paste_only_primary_get_the_text_typed(names):
    assert is_terminal(names) and choose_chord(names) == "type"
    assert choose_chord(names, (("xterm", "ctrl+shift+v"), ("urxvt", "ctrl+shift+v"), ("uxterm", "ctrl+v"))) != "type"


@pytest.mark.parametrize("names", [("Navigator", "firefox"), ("org.gnome.TextEditor",), ("emacs", "Emacs"),
                                   ("stalonetray",), ()])
def test_other_apps_and_unknown_get_ctrl_v(names):
    assert not is_terminal(names) and choose_chord(names) == "ctrl+v"


def test_the_table_wins_and_matches_any_name_ignoring_case():
    table = (("Emacs", "type"), ("org.wezfurlong.wezterm", "ctrl+v"))
    assert choose_chord(("emacs", "Emacs"), table) == "type"
    assert choose_chord(("ORG.WEZFURLONG.WEZTERM",), table) == "ctrl+v"
    assert choose_chord(("kitty",), table) == "ctrl+shift+v"
    assert choose_chord((), table) == "ctrl+v"


def test_chord_values_and_the_env_form():
    assert all(chord_problem(chord) is None for chord in CHORDS)
    assert "ctrl+shift+v" in chord_problem("alt+v")
    assert parse_table_text(" kitty = Shift+Insert ,emacs=type,") == [("kitty", "shift+insert"), ("emacs", "type")]
    with pytest.raises(ValueError, match="'kitty'"):
        parse_table_text("kitty")


def test_tool_arguments_for_each_chord():
    assert keysend.xdotool_chord("xdotool", "ctrl+shift+v") == ["xdotool", "key", "--clearmodifiers", "ctrl+shift+v"]
    assert keysend.wtype_chord("wtype", "ctrl+v") == ["wtype", "-s", "30", "-M", "ctrl", "-k", "v", "-m", "ctrl",
                                                      "-p", "F20"]
    assert keysend.wtype_chord("wtype", "ctrl+shift+v") == [
        "wtype", "-s", "30", "-M", "ctrl", "-M", "shift", "-k", "v", "-m", "shift", "-m", "ctrl", "-p", "F20"]
    assert keysend.wtype_type("wtype", "-k x") == ["wtype", "-s", "30", "--", "-k x"]
    assert keysend.ydotool_chord("ydotool", "ctrl+v") == ["ydotool", "key", "29:1", "47:1", "47:0", "29:0"]
    assert keysend.ydotool_chord("ydotool", "ctrl+shift+v") == ["ydotool", "key", "29:1", "42:1", "47:1", "47:0",
                                                                "42:0", "29:0"]
    for table in (keysend.XDOTOOL_KEYS, keysend.WTYPE_CHORDS, keysend.YDOTOOL_CHORDS):
        assert set(table) == set(CHORDS) - {"type"}  # every tool sends every chord, Shift included


def test_ydotool_socket_order():
    present = {"/run/user/1000/.ydotool_socket", "/tmp/.ydotool_socket", "/custom.sock"}
    def find(env, exists=present.__contains__):
        return keysend.ydotool_socket(env, uid=1000, exists=exists)
    assert find({"YDOTOOL_SOCKET": "/custom.sock"}) == "/custom.sock"
    assert find({"YDOTOOL_SOCKET": "/gone.sock"}) == "/run/user/1000/.ydotool_socket"
    assert find({"XDG_RUNTIME_DIR": "/xdg"}, exists={"/xdg/.ydotool_socket"}.__contains__) == "/xdg/.ydotool_socket"
    assert find({}, exists={"/tmp/.ydotool_socket"}.__contains__) == "/tmp/.ydotool_socket"
    assert find({}, exists=lambda path: False) is None


@pytest.fixture
def path_with(tmp_path):
    def make(*tools: str, **env: str) -> dict[str, str]:
        for tool in tools:
            (tmp_path / tool).write_text("#!/bin/sh\n")
            (tmp_path / tool).chmod(0o755)
        return {"PATH": str(tmp_path), "WAYLAND_DISPLAY": "wayland-1", **env}
    return make


@pytest.mark.parametrize("tools, desktop, socket, expected", [
    (("wtype", "ydotool"), "sway", True, "wtype"),
    (("wtype", "ydotool"), "Hyprland", False, "wtype"),
    (("wtype", "ydotool"), "GNOME", True, "ydotool"),
    (("wtype", "ydotool"), "KDE", True, "ydotool"),
    (("wtype", "ydotool"), "ubuntu:GNOME", False, None),  # wtype cannot work there; ydotoold is not running
    (("ydotool",), "sway", True, "ydotool"),
    (("ydotool",), "sway", False, None),
    ((), "", False, None),
])
def test_wayland_keyer(path_with, tools, desktop, socket, expected):
    env = path_with(*tools, XDG_CURRENT_DESKTOP=desktop)
    keyer = keysend.wayland_keyer(env, uid=1000, exists=lambda path: socket and path == "/tmp/.ydotool_socket")
    assert (keyer.name if keyer else None) == expected
    if keyer is not None and keyer.name == "ydotool":
        assert keyer.env == {"YDOTOOL_SOCKET": "/tmp/.ydotool_socket"}
        assert keysend.type_args(keyer, "hi") == ([keyer.path, "type", "--file", "-"], "hi")
