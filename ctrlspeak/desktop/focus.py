"""Which application has the keyboard focus, as the names it goes by, to pick a paste chord.

    focused_app(env, kind) -> FocusedApp | None

The names are what a person sees in their desktop's tools and would write in the config's
``[paste_chord]`` table: both ``WM_CLASS`` parts on X11 (instance, class: ``"xterm", "XTerm"``),
the ``app_id`` on sway (``window_properties.class`` and ``instance`` for an XWayland window,
whose app_id is null) and ``class`` / ``initialClass`` on Hyprland.

None means "cannot tell": a Wayland session without sway's or Hyprland's IPC (GNOME, KDE: they
do not say which window is focused), a missing tool, a tool that failed or took too long. The
caller then keeps the ordinary paste chord.

Every tool runs through ``run`` (argv, timeout) -> stdout or None, so tests pass fake output.
"""
from __future__ import annotations

import json
import logging
import re
import subprocess
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ctrlspeak.desktop.clipboard import which

log = logging.getLogger(__name__)

#: seconds one focus query may take: it runs before every paste, so a stuck tool must cost little
QUERY_TIMEOUT_S = 1.0

#: (argv, timeout) -> the tool's stdout when it exited 0, else None
Runner = Callable[[Sequence[str], float], "str | None"]

_WM_CLASS_RE = re.compile(r'"((?:[^"\\]|\\.)*)"')
_WINDOW_ID_RE = re.compile(r"window id # (0x[0-9a-fA-F]+)")


@dataclass(frozen=True)
class FocusedApp:
    """names: what the focused window is called, as reported (compare them case-insensitively);
    source: who said so ("x11", "sway", "hyprland")."""

    names: tuple[str, ...]
    source: str


def subprocess_runner(env: Mapping[str, str]) -> Runner:
    """A Runner that runs the tool with ``env``; any failure is None (the focus is then unknown)."""

    def run(argv: Sequence[str], timeout: float) -> str | None:
        try:
            proc = subprocess.run(list(argv), stdin=subprocess.DEVNULL, capture_output=True, env=dict(env),
                                  timeout=timeout, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            log.debug("focus query %s failed: %s", argv[0], exc)
            return None
        if proc.returncode != 0:
            log.debug("focus query %s exited %d", argv[0], proc.returncode)
            return None
        return proc.stdout.decode("utf-8", errors="replace")

    return run


def focused_app(env: Mapping[str, str], kind: str | None, run: Runner | None = None) -> FocusedApp | None:
    """The focused application in this session (``kind`` as ``clipboard.display_kind``), or None."""
    run = run or subprocess_runner(env)
    if kind == "x11":
        names = _x11_names(env, run)
        return FocusedApp(names, "x11") if names else None
    if kind == "wayland":
        if env.get("SWAYSOCK") and (swaymsg := which("swaymsg", env)):
            out = run([swaymsg, "-t", "get_tree"], QUERY_TIMEOUT_S)
            names = sway_focused_names(out) if out is not None else ()
            return FocusedApp(names, "sway") if names else None
        if env.get("HYPRLAND_INSTANCE_SIGNATURE") and (hyprctl := which("hyprctl", env)):
            out = run([hyprctl, "activewindow", "-j"], QUERY_TIMEOUT_S)
            names = hyprland_names(out) if out is not None else ()
            return FocusedApp(names, "hyprland") if names else None
    return None


def can_know_focus(env: Mapping[str, str], kind: str | None) -> bool:
    """Whether this session has a way to name the focused app at all (for messages and doctor)."""
    if kind == "x11":
        return which("xprop", env) is not None
    if kind == "wayland":
        return bool((env.get("SWAYSOCK") and which("swaymsg", env))
                    or (env.get("HYPRLAND_INSTANCE_SIGNATURE") and which("hyprctl", env)))
    return False


# -- X11 ------------------------------------------------------------------------------------

def _x11_names(env: Mapping[str, str], run: Runner) -> tuple[str, ...]:
    xprop = which("xprop", env)
    if xprop is None:
        return ()
    # xdotool names the window holding the input focus even without a window manager; a window
    # manager's _NET_ACTIVE_WINDOW is the fallback (and the only way without xdotool). Some
    # toolkits focus an inner window with no WM_CLASS: then the active window has it.
    for window in _x11_candidate_windows(env, run, xprop):
        out = run([xprop, "-id", window, "WM_CLASS"], QUERY_TIMEOUT_S)
        names = parse_wm_class(out) if out is not None else ()
        if names:
            return names
    return ()


def _x11_candidate_windows(env: Mapping[str, str], run: Runner, xprop: str) -> Iterator[str]:
    xdotool = which("xdotool", env)
    if xdotool:
        out = run([xdotool, "getwindowfocus"], QUERY_TIMEOUT_S)
        window = (out or "").strip()
        if window.isdigit() and window != "0":
            yield window
    out = run([xprop, "-root", "_NET_ACTIVE_WINDOW"], QUERY_TIMEOUT_S)
    match = _WINDOW_ID_RE.search(out or "")
    if match and int(match.group(1), 16) != 0:
        yield match.group(1)


def parse_wm_class(xprop_output: str) -> tuple[str, ...]:
    """``WM_CLASS(STRING) = "gnome-terminal-server", "Gnome-terminal"`` -> both names;
    ``WM_CLASS:  not found.`` -> ()."""
    line = next((ln for ln in xprop_output.splitlines() if ln.startswith("WM_CLASS") and "=" in ln), "")
    value = line.split("=", 1)[1] if line else ""
    return _unique([re.sub(r"\\(.)", r"\1", part) for part in _WM_CLASS_RE.findall(value)])


# -- sway and Hyprland ----------------------------------------------------------------------

def sway_focused_names(tree_json: str) -> tuple[str, ...]:
    """The focused window's names in ``swaymsg -t get_tree``; () when no window is focused
    (an empty workspace is focused, or the JSON is not a tree)."""
    try:
        tree = json.loads(tree_json)
    except ValueError:
        return ()
    node = _find_focused(tree) if isinstance(tree, dict) else None
    if node is None:
        return ()
    props = node.get("window_properties") or {}
    candidates = [node.get("app_id"), props.get("class"), props.get("instance")] if isinstance(props, dict) \
        else [node.get("app_id")]
    return _unique(candidates)


def _find_focused(node: dict[str, Any]) -> dict[str, Any] | None:
    """Depth first through tiled and floating children; only a window (it has a pid) counts."""
    if node.get("focused") and node.get("pid"):
        return node
    for child in [*(node.get("nodes") or []), *(node.get("floating_nodes") or [])]:
        if isinstance(child, dict) and (found := _find_focused(child)) is not None:
            return found
    return None


def hyprland_names(active_json: str) -> tuple[str, ...]:
    """``hyprctl activewindow -j``: ``{}`` (or not JSON) when no window is active."""
    try:
        window = json.loads(active_json)
    except ValueError:
        return ()
    if not isinstance(window, dict):
        return ()
    return _unique([window.get("class"), window.get("initialClass")])


def _unique(candidates: Sequence[object]) -> tuple[str, ...]:
    names: list[str] = []
    for name in candidates:
        if isinstance(name, str) and name and name not in names:
            names.append(name)
    return tuple(names)
