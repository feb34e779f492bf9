"""Naming the focused app from fake xprop, swaymsg and hyprctl output (focus.py)."""
from __future__ import annotations

import json
from collections.abc import Sequence

import pytest

from ctrlspeak.desktop.focus import FocusedApp, focused_app, hyprland_names, parse_wm_class, sway_focused_names


@pytest.mark.parametrize("output, expected", [
    ('WM_CLASS(STRING) = "gnome-terminal-server", "Gnome-terminal"\n', ("gnome-terminal-server", "Gnome-terminal")),
    ('WM_CLASS(STRING) = "xterm", "XTerm"\n', ("xterm", "XTerm")),
    ('WM_CLASS(STRING) = "we\\"ird", "Odd"\n', ('we"ird', "Odd")),
    ("WM_CLASS:  not found.\n", ()),
    ("", ()),
])
def test_parse_wm_class(output, expected):
    assert parse_wm_class(output) == expected


def _window(app_id, focused=False, **extra):
    return {"type": "con", "pid": 4242, "app_id": app_id, "focused": focused, "nodes": [], **extra}


def _tree(*windows, floating=()):
    workspace = {"type": "workspace", "focused": False, "nodes": list(windows), "floating_nodes": list(floating)}
    output = {"type": "output", "focused": False, "nodes": [workspace]}
    return json.dumps({"type": "root", "focused": False, "nodes": [output]})


def test_sway_names_the_focused_native_window():
    tree = _tree(_window("firefox"), {"type": "con", "nodes": [_window("foot", focused=True)]})
    assert sway_focused_names(tree) == ("foot",)


def test_sway_names_an_xwayland_window_by_its_class():
    xwayland = _window(None, focused=True, window_properties={"class": "XTerm", "instance": "xterm"})
    assert sway_focused_names(_tree(_window("firefox"), xwayland)) == ("XTerm", "xterm")


def test_sway_finds_a_focused_floating_window():
    assert sway_focused_names(_tree(_window("a"), floating=[_window("kitty", focused=True)])) == ("kitty",)


def test_sway_with_only_an_empty_workspace_focused_names_nothing():
    tree = json.loads(_tree(_window("foot")))
    tree["nodes"][0]["nodes"][0]["focused"] = True  # a workspace has no pid: not an app
    assert sway_focused_names(json.dumps(tree)) == ()
    assert sway_focused_names("not json") == ()


def test_hyprland_active_window():
    assert hyprland_names(json.dumps({"class": "kitty", "initialClass": "kitty", "title": "~"})) == ("kitty",)
    assert hyprland_names("{}") == () and hyprland_names("") == () and hyprland_names("[]") == ()


class FakeRun:
    """Answers by the tool's name and first arguments; records every call."""

    def __init__(self, answers: dict[str, str | None]) -> None:
        self.answers = answers
        self.calls: list[list[str]] = []

    def __call__(self, argv: Sequence[str], timeout: float) -> str | None:
        assert timeout <= 2.0  # runs before every paste: a stuck tool must cost little
        import os

        call = [os.path.basename(argv[0]), *argv[1:]]
        self.calls.append(call)
        return self.answers.get(" ".join(call))


@pytest.fixture
def bin_env(tmp_path):
    """An env whose PATH holds (empty) tools of the given names, so `which` finds them."""
    def make(*names: str, **env: str) -> dict[str, str]:
        for name in names:
            tool = tmp_path / name
            tool.write_text("#!/bin/sh\nexit 1\n")
            tool.chmod(0o755)
        return {"PATH": str(tmp_path), **env}
    return make


def test_x11_focus_is_the_focused_windows_wm_class(bin_env):
    run = FakeRun({"xdotool getwindowfocus": "4194318\n",
                   "xprop -id 4194318 WM_CLASS": 'WM_CLASS(STRING) = "kitty", "kitty"\n'})
    assert focused_app(bin_env("xdotool", "xprop"), "x11", run) == FocusedApp(("kitty",), "x11")


def test_x11_falls_back_to_the_active_window_when_the_focus_has_no_class(bin_env):
    run = FakeRun({"xdotool getwindowfocus": "77\n", "xprop -id 77 WM_CLASS": "WM_CLASS:  not found.\n",
                   "xprop -root _NET_ACTIVE_WINDOW": "_NET_ACTIVE_WINDOW(WINDOW): window id # 0x2c00007\n",
                   "xprop -id 0x2c00007 WM_CLASS": 'WM_CLASS(STRING) = "konsole", "konsole"\n'})
    assert focused_app(bin_env("xdotool", "xprop"), "x11", run).names == ("konsole",)
    # and without xdotool the active window is the only way
    run = FakeRun({"xprop -root _NET_ACTIVE_WINDOW": "_NET_ACTIVE_WINDOW(WINDOW): window id # 0x0\n"})
    assert focused_app(bin_env("xprop"), "x11", run) is None


def test_x11_without_xprop_is_unknown(bin_env):
    run = FakeRun({})
    assert focused_app(bin_env("xdotool"), "x11", run) is None and run.calls == []


def test_sway_and_hyprland_are_asked_only_with_their_socket(bin_env):
    tree = _tree(_window("foot", focused=True))
    run = FakeRun({"swaymsg -t get_tree": tree, "hyprctl activewindow -j": '{"class": "Alacritty"}'})
    assert focused_app(bin_env("swaymsg", "hyprctl", SWAYSOCK="/run/sway.sock"), "wayland", run).names == ("foot",)
    env = bin_env("swaymsg", "hyprctl", HYPRLAND_INSTANCE_SIGNATURE="abc")
    assert focused_app(env, "wayland", run) == FocusedApp(("Alacritty",), "hyprland")
    assert focused_app(bin_env("swaymsg", "hyprctl"), "wayland", run) is None  # GNOME, KDE: cannot tell


def test_a_failing_query_is_unknown(bin_env):
    run = FakeRun({"swaymsg -t get_tree": None})
    assert focused_app(bin_env("swaymsg", SWAYSOCK="/x"), "wayland", run) is None
    assert focused_app({}, None, run) is None and focused_app({}, "mac", run) is None
