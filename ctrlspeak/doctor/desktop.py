"""Doctor checks for the desktop side of dictation: the global hotkey (X11 RECORD and XTEST,
the kernel's input devices under Wayland, or macOS Accessibility), the clipboard tools and
the paste tool.
"""
from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable, Mapping
from typing import Any

from ctrlspeak.doctor.probe import (
    MISSING, OK, WARN, Check, detect_session, first_found, given_env, new_deadline, run_python, time_left, which,
)
from ctrlspeak.service import run_command

TOGGLE_HINT = ("bind `ctrlspeak toggle` to a keyboard shortcut in your desktop's settings "
               "(`ctrlspeak shortcuts` prints the exact binding for this desktop)")

EvdevProblem = Callable[[], "str | None"]


def _evdev_problem() -> str | None:
    from ctrlspeak.desktop.evdev_keys import evdev_problem

    return evdev_problem()


# --- X11 -------------------------------------------------------------------------------------

_X_CHILD = r"""
import json
from Xlib import display
d = display.Display()
owner = d.get_selection_owner(d.intern_atom("_NET_SYSTEM_TRAY_S%d" % d.get_default_screen()))
print(json.dumps({"extensions": sorted(d.list_extensions()), "tray_owner": int(getattr(owner, "id", owner))}))
"""


def x_server_facts(env: Mapping[str, str], deadline: float | None = None) -> dict[str, Any] | str:
    """Extensions and tray owner of the X display in ``env``, or the reason it cannot be asked."""
    if importlib.util.find_spec("Xlib") is not None:  # python-xlib comes with pynput on Linux
        out = run_python(_X_CHILD, env, deadline=deadline)
        if out.ok:
            return json.loads(out.stdout.strip().splitlines()[-1])
        return f"cannot open X display {env.get('DISPLAY')!r}: {out.why()}"
    out = run_command(["xdpyinfo", "-queryExtensions"], env, timeout=time_left(deadline))
    if out.returncode == 127:
        return "cannot inspect the X server: neither python-xlib nor xdpyinfo (x11-utils) is installed"
    if not out.ok:
        return f"cannot open X display {env.get('DISPLAY')!r}: {out.why()}"
    return {"extensions": parse_xdpyinfo_extensions(out.stdout), "tray_owner": None}


def parse_xdpyinfo_extensions(text: str) -> list[str]:
    """The indented names after ``number of extensions:`` up to the next unindented line."""
    names: list[str] = []
    lines = iter(text.splitlines())
    for line in lines:
        if line.startswith("number of extensions:"):
            break
    for line in lines:
        if not line[:1].isspace():
            break
        if line.strip():
            names.append(line.split()[0])
    return names


def check_hotkey(env: Mapping[str, str] | None = None, sys_platform: str | None = None,
                 evdev: EvdevProblem = _evdev_problem) -> Check:
    env = given_env(env)
    session = detect_session(env, sys_platform)
    if session.kind == "macos":
        return _macos_accessibility()
    if session.kind == "wayland":
        return _wayland_hotkey(env, evdev())
    if session.kind == "none":
        return Check("hotkey", MISSING, "no X11 display (DISPLAY is unset)",
                     f"run ctrlspeak inside an X11 desktop session, or {TOGGLE_HINT}", True)
    facts = x_server_facts(env, new_deadline())
    if isinstance(facts, str):
        return Check("hotkey", MISSING, facts,
                     f"check DISPLAY and XAUTHORITY (`ctrlspeak service install` again from the desktop), or {TOGGLE_HINT}", True)
    lacking = [ext for ext in ("RECORD", "XTEST") if ext not in facts["extensions"]]
    if lacking:
        return Check("hotkey", MISSING, f"X display {session.display} lacks {' and '.join(lacking)}",
                     'enable it in the X server (Xorg: Load "record" in the "Module" section), '
                     f"or {TOGGLE_HINT}", True)
    return Check("hotkey", OK, f"X display {session.display} has RECORD and XTEST", "", True)


def _wayland_hotkey(env: Mapping[str, str], evdev_why: str | None) -> Check:
    # Wayland gives no program the global keys: the kernel's input devices do, or sway's IPC.
    # Never required: a desktop shortcut to `ctrlspeak toggle` does the same job.
    from ctrlspeak.desktop.evdev_keys import INPUT_GROUP_FIX

    if evdev_why is None:
        return Check("hotkey", OK, "Wayland session: keys read from the kernel's input devices (evdev)", "", False)
    if env.get("SWAYSOCK") or env.get("HYPRLAND_INSTANCE_SIGNATURE"):
        ipc = "sway's" if env.get("SWAYSOCK") else "Hyprland's"
        return Check("hotkey", WARN, f"Wayland session: evdev unavailable ({evdev_why}); {ipc} IPC stands in "
                     "(with the release bindings `ctrlspeak shortcuts` prints)",
                     f"to read keys from the kernel instead: {INPUT_GROUP_FIX}", False)
    # the portal is not asked here: calling it could start xdg-desktop-portal, and a doctor
    # starts no daemons; the daemon's own notice says what the portal answered
    return Check("hotkey", WARN, f"Wayland session: global keys cannot be read ({evdev_why}); where the "
                 "desktop's portal offers GlobalShortcuts (KDE, GNOME 48+, Hyprland) one desktop shortcut "
                 "stands in for the triple tap",
                 f"let ctrlspeak read the keyboard: {INPUT_GROUP_FIX}; or {TOGGLE_HINT}", False)


def check_evdev(env: Mapping[str, str] | None = None, sys_platform: str | None = None,
                evdev: EvdevProblem = _evdev_problem) -> Check:
    """Whether a keyboard among the kernel's input devices is readable (the Wayland key source,
    or ``hotkey_backend = "evdev"`` anywhere on Linux)."""
    from ctrlspeak.desktop.evdev_keys import INPUT_GROUP_FIX

    env = given_env(env)
    if detect_session(env, sys_platform).kind == "macos":
        return Check("evdev", OK, "not used on macOS", "", False)
    why = evdev()
    if why is None:
        return Check("evdev", OK, "a keyboard in /dev/input is readable (read-only, never grabbed)", "", False)
    return Check("evdev", WARN, f"keys cannot be read from /dev/input: {why}", INPUT_GROUP_FIX, False)


def _macos_accessibility() -> Check:
    import ctypes

    try:
        lib = ctypes.cdll.LoadLibrary(
            "/System/Library/Frameworks/ApplicationServices.framework/ApplicationServices")
        lib.AXIsProcessTrusted.restype = ctypes.c_bool
        trusted = bool(lib.AXIsProcessTrusted())
    except (OSError, AttributeError) as exc:
        return Check("hotkey", WARN, f"cannot ask macOS for the Accessibility permission: {exc}",
                     "allow this terminal (or Python) in System Settings > Privacy & Security > Accessibility", True)
    if trusted:
        return Check("hotkey", OK, "Accessibility permission granted", "", True)
    return Check("hotkey", MISSING, "no Accessibility permission: global keys and the paste are blocked",
                 "allow this terminal (or Python) in System Settings > Privacy & Security > "
                 "Accessibility and Input Monitoring, then restart ctrlspeak", True)


# --- clipboard and paste ---------------------------------------------------------------------

def check_clipboard(env: Mapping[str, str] | None = None, sys_platform: str | None = None) -> Check:
    env = given_env(env)
    session = detect_session(env, sys_platform)
    if session.kind == "macos":
        if which("pbcopy", env) and which("pbpaste", env):
            return Check("clipboard", OK, "pbcopy/pbpaste", "", True)
        return Check("clipboard", MISSING, "pbcopy/pbpaste not found", "add /usr/bin to PATH", True)
    if session.kind == "wayland":
        if which("wl-copy", env) and which("wl-paste", env):
            return Check("clipboard", OK, "wl-copy/wl-paste", "", True)
        x_tool = first_found(("xclip", "xsel"), env) if session.display else None
        if x_tool:
            return Check("clipboard", WARN, f"only {x_tool} through Xwayland: native Wayland apps may not see the text",
                         "install wl-clipboard", True)
        return Check("clipboard", MISSING, "wl-copy/wl-paste not found", "install wl-clipboard", True)
    tool = first_found(("xclip", "xsel"), env)
    if session.kind == "none":
        return Check("clipboard", MISSING, "no display session: there is no clipboard to set",
                     "run ctrlspeak inside your desktop session", True)
    if tool:
        return Check("clipboard", OK, tool, "", True)
    return Check("clipboard", MISSING, "neither xclip nor xsel found", "install xclip (or xsel)", True)


def check_paste(env: Mapping[str, str] | None = None, sys_platform: str | None = None) -> Check:
    env = given_env(env)
    session = detect_session(env, sys_platform)
    has_pynput = importlib.util.find_spec("pynput") is not None
    if session.kind == "macos":
        if has_pynput:
            return Check("paste", OK, "pynput (Quartz events; needs the Accessibility permission)", "", True)
        return Check("paste", MISSING, "pynput is not installed", "reinstall ctrlspeak (pip install ctrlspeak)", True)
    if session.kind == "wayland":
        from ctrlspeak.desktop.keysend import no_virtual_keyboard

        if no_virtual_keyboard(env):
            # wtype cannot work here; the portal is not called (a doctor starts nothing)
            from ctrlspeak.desktop.portal import session_bus_address

            if session_bus_address(env):
                also = ", then ydotool" if which("ydotool", env) else ""
                return Check("paste", OK, "GNOME/KDE: the desktop portal's remote keyboard (the daemon asks "
                             f"for it at start; allow it once){also}", "", True)
        elif which("wtype", env):
            return Check("paste", OK, "wtype", "", True)
        if which("ydotool", env):
            return Check("paste", WARN, "ydotool (needs ydotoold running and access to /dev/uinput)", "", True)
        if no_virtual_keyboard(env):
            return Check("paste", MISSING, "GNOME/KDE without a session bus for the portal's keyboard, and no "
                         "ydotool: the text stays on the clipboard",
                         "run ctrlspeak inside your desktop session, or install ydotool and run ydotoold", True)
        return Check("paste", MISSING, "neither wtype nor ydotool found: the text stays on the clipboard",
                     "install wtype (wlroots compositors such as sway) or ydotool (GNOME, KDE)", True)
    if session.kind == "none":
        return Check("paste", MISSING, "no display session to paste into", "run ctrlspeak inside your desktop session", True)
    if which("xdotool", env):
        return Check("paste", OK, "xdotool", "", True)
    if has_pynput:
        facts = x_server_facts(env, new_deadline())
        if isinstance(facts, dict) and "XTEST" in facts["extensions"]:
            return Check("paste", OK, "pynput through XTEST (xdotool not found)", "", True)
    return Check("paste", MISSING, "no xdotool and no XTEST for pynput", "install xdotool", True)
