"""Doctor checks for what the desktop offers over the session bus: a notification server,
and a tray host (an X11 system tray or a StatusNotifierWatcher).

A doctor must not start daemons: the bus is only asked where it already exists.
"""
from __future__ import annotations

import re
from collections.abc import Mapping

from ctrlspeak.desktop.portal import session_bus_address
from ctrlspeak.doctor.desktop import x_server_facts
from ctrlspeak.doctor.probe import OK, WARN, Check, detect_session, given_env, new_deadline, time_left, which
from ctrlspeak.service import CommandResult, run_command


def _dbus(env: Mapping[str, str], method: str, arg: str | None, deadline: float) -> CommandResult:
    """Call an org.freedesktop.DBus method on the session bus with whichever client is installed."""
    clients = (
        ["dbus-send", "--session", "--print-reply", "--reply-timeout=2000", "--dest=org.freedesktop.DBus",
         "/org/freedesktop/DBus", f"org.freedesktop.DBus.{method}", *([f"string:{arg}"] if arg else [])],
        ["gdbus", "call", "--session", "--timeout", "2", "--dest", "org.freedesktop.DBus", "--object-path",
         "/org/freedesktop/DBus", "--method", f"org.freedesktop.DBus.{method}", *([arg] if arg else [])],
        ["busctl", "--user", "--timeout=2", "call", "org.freedesktop.DBus", "/org/freedesktop/DBus",
         "org.freedesktop.DBus", method, *(["s", arg] if arg else [])],
    )
    result = CommandResult((), 127, "", "no D-Bus client found (dbus-send, gdbus or busctl)")
    for argv in clients:
        result = run_command(argv, env, timeout=time_left(deadline))
        if result.returncode != 127:
            break
    return result


def session_bus_env(env: Mapping[str, str]) -> dict[str, str] | None:
    """``env`` with a session bus address, or None when there is no bus to ask.

    Without DBUS_SESSION_BUS_ADDRESS libdbus would autolaunch a new bus on the X display:
    a doctor must not start daemons, so only the systemd-style default socket is used
    (:func:`ctrlspeak.desktop.portal.session_bus_address`).
    """
    address = session_bus_address(env)
    return None if address is None else {**env, "DBUS_SESSION_BUS_ADDRESS": address}


def _bus_name(env: Mapping[str, str], name: str, deadline: float) -> tuple[str, str]:
    """("owned" | "activatable" | "absent" | "no-bus", detail) for a well-known name."""
    bus_env = session_bus_env(env)
    if bus_env is None:
        return "no-bus", "DBUS_SESSION_BUS_ADDRESS is unset and $XDG_RUNTIME_DIR/bus does not exist"
    env = bus_env
    owner = _dbus(env, "NameHasOwner", name, deadline)
    if not owner.ok:
        return "no-bus", owner.why()
    if re.search(r"\btrue\b", owner.stdout):
        return "owned", ""
    activatable = _dbus(env, "ListActivatableNames", None, deadline)
    if activatable.ok and f'{name}"' in activatable.stdout.replace("'", '"'):
        return "activatable", ""
    return "absent", ""


def check_notifications(env: Mapping[str, str] | None = None, sys_platform: str | None = None) -> Check:
    env = given_env(env)
    if detect_session(env, sys_platform).kind == "macos":
        if which("osascript", env):
            return Check("notifications", OK, "osascript", "", False)
        return Check("notifications", WARN, "osascript not found", "add /usr/bin to PATH", False)
    state, why = _bus_name(env, "org.freedesktop.Notifications", new_deadline())
    if state == "owned":
        return Check("notifications", OK, "a notification server owns org.freedesktop.Notifications", "", False)
    if state == "activatable":
        return Check("notifications", OK, "a notification server starts on demand (D-Bus activation)", "", False)
    if state == "no-bus":
        return Check("notifications", WARN, f"no D-Bus session bus: {why}",
                     "run ctrlspeak inside your desktop session (DBUS_SESSION_BUS_ADDRESS)", False)
    return Check("notifications", WARN, "no notification server on the session bus",
                 "optional: run a notification daemon (dunst, mako, or your desktop's own)", False)


def check_tray(env: Mapping[str, str] | None = None, sys_platform: str | None = None) -> Check:
    env = given_env(env)
    session = detect_session(env, sys_platform)
    if session.kind == "macos":
        return Check("tray", OK, "menu bar", "", False)
    deadline = new_deadline()
    if session.display:
        facts = x_server_facts(env, deadline)
        if isinstance(facts, dict) and facts.get("tray_owner"):
            return Check("tray", OK, "an X11 system tray owns _NET_SYSTEM_TRAY_S0", "", False)
    if _bus_name(env, "org.kde.StatusNotifierWatcher", deadline)[0] == "owned":
        return Check("tray", OK, "a StatusNotifierWatcher is on the session bus", "", False)
    return Check("tray", WARN, "no tray host: the daemon runs without an icon",
                 "optional: a system tray (trayer, stalonetray, a panel) or GNOME's AppIndicator extension", False)
