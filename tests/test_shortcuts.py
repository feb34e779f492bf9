"""Which desktop the environment names, and the binding text printed for each (`ctrlspeak shortcuts`)."""
from __future__ import annotations

import pytest

from ctrlspeak.cli import build_parser, main
from ctrlspeak.desktop.shortcuts import DESKTOPS, TOGGLE, detect_desktop, render, shortcut_text


@pytest.mark.parametrize("env, expected", [
    ({"XDG_CURRENT_DESKTOP": "sway"}, "sway"),
    ({"SWAYSOCK": "/run/user/1000/sway-ipc.1000.42.sock"}, "sway"),
    ({"XDG_CURRENT_DESKTOP": "Hyprland"}, "hyprland"),
    ({"HYPRLAND_INSTANCE_SIGNATURE": "abc_123"}, "hyprland"),
    ({"XDG_CURRENT_DESKTOP": "ubuntu:GNOME"}, "gnome"),
    ({"XDG_CURRENT_DESKTOP": "GNOME-Classic:GNOME"}, "gnome"),
    ({"XDG_CURRENT_DESKTOP": "KDE"}, "kde"),
    ({"DESKTOP_SESSION": "plasmawayland"}, "kde"),
    ({"DESKTOP_SESSION": "/usr/share/xsessions/plasma"}, "kde"),
    ({"DESKTOP_SESSION": "gnome-wayland"}, "gnome"),
    ({"DESKTOP_SESSION": "sway"}, "sway"),
    ({"XDG_CURRENT_DESKTOP": "XFCE"}, "other"),
    ({}, None),
    ({"XDG_CURRENT_DESKTOP": ""}, None),
])
def test_the_desktop_is_read_from_the_session_variables(env, expected):
    assert detect_desktop(env) == expected


def test_what_the_session_declares_wins_over_a_leftover_socket_variable():
    # sway started from inside a GNOME session's terminal would leave XDG_CURRENT_DESKTOP=GNOME
    # and set SWAYSOCK; the declared desktop is the one whose settings the user opens
    assert detect_desktop({"XDG_CURRENT_DESKTOP": "GNOME", "SWAYSOCK": "/x"}) == "gnome"
    assert detect_desktop({"XDG_CURRENT_DESKTOP": "XFCE", "SWAYSOCK": "/x"}) == "sway"


def test_sway_gets_the_release_bindings_and_the_chord():
    text = shortcut_text("sway")
    lines = text.splitlines()
    assert "bindsym --release Control_L nop ctrlspeak-tap" in lines
    assert "bindsym --release Control_R nop ctrlspeak-tap" in lines
    assert "bindsym Ctrl+Alt+d exec ctrlspeak toggle" in lines
    assert "Ctrl+C" in text  # the finding: chords keep working


def test_hyprland_prints_the_tap_bindings_and_the_toggle_chord():
    from ctrlspeak.desktop.hyprland_keys import BINDING_LINES

    lines = shortcut_text("hyprland").splitlines()
    assert all(line in lines for line in BINDING_LINES)
    assert "bind = CTRL ALT, D, exec, ctrlspeak toggle" in lines


def test_gnome_is_four_gsettings_commands():
    commands = [line for line in shortcut_text("gnome").splitlines() if line.startswith("gsettings set ")]
    assert len(commands) == 4
    path = "/org/gnome/settings-daemon/plugins/media-keys/custom-keybindings/ctrlspeak/"
    assert commands[0] == ("gsettings set org.gnome.settings-daemon.plugins.media-keys custom-keybindings "
                           f"\"['{path}']\"")
    key = f"org.gnome.settings-daemon.plugins.media-keys.custom-keybinding:{path}"
    assert commands[1:] == [f"gsettings set {key} name 'ctrlspeak'",
                            f"gsettings set {key} command 'ctrlspeak toggle'",
                            f"gsettings set {key} binding '<Control><Alt>d'"]


def test_kde_gives_the_system_settings_path_and_the_command():
    text = shortcut_text("kde")
    assert "System Settings > Keyboard > Shortcuts" in text
    assert "ctrlspeak toggle" in text


@pytest.mark.parametrize("desktop", DESKTOPS)
def test_every_desktop_runs_the_real_toggle_verb(desktop):
    assert TOGGLE in shortcut_text(desktop)


def test_the_toggle_verb_exists():
    assert build_parser().parse_args(TOGGLE.split()[1:]).verb == "toggle"


def test_render_prints_this_desktop_or_all():
    assert render({"SWAYSOCK": "/x"}).startswith("== sway ==")
    assert "Hyprland" not in render({"SWAYSOCK": "/x"})
    everything = render({"SWAYSOCK": "/x"}, all_desktops=True)
    for title in ("== sway ==", "== Hyprland ==", "== GNOME ==", "== KDE Plasma ==", "== other desktops =="):
        assert title in everything
    unknown = render({})
    assert unknown.startswith("Could not tell") and "== GNOME ==" in unknown


def test_the_cli_verb_prints_the_binding(capsys, monkeypatch):
    for var in ("XDG_CURRENT_DESKTOP", "DESKTOP_SESSION", "HYPRLAND_INSTANCE_SIGNATURE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("SWAYSOCK", "/run/user/1000/sway-ipc.sock")
    assert main(["shortcuts"]) == 0
    out = capsys.readouterr().out
    assert "bindsym --release Control_L nop ctrlspeak-tap" in out
    assert main(["shortcuts", "--all"]) == 0
    assert "gsettings set" in capsys.readouterr().out
