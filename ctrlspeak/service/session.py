"""The login session's variables (display, bus, audio) for a daemon that a service manager starts.

A user unit does not inherit the login session's environment: the user manager starts at
the first login, before any display exists. ``PassEnvironment=`` does not help, since it
passes the *manager's* own environment, which has no DISPLAY either. What works after every
re-login is the manager environment that the desktop itself refreshes: GNOME, KDE and
Debian's Xsession run ``dbus-update-activation-environment --systemd`` (the same as
``systemctl --user import-environment``) before they start ``graphical-session.target``,
which is what starts this unit. ``install`` does the same import once, so the current
session works at once. The values seen at install time are written too, but as
``CTRLSPEAK_SESSION_*`` fallbacks, not as ``DISPLAY=...``: a unit's ``Environment=``
overrides the manager's environment, so a frozen ``XAUTHORITY`` (a new random file per
login under SDDM and startx) or ``DBUS_SESSION_BUS_ADDRESS`` (new per login with
dbus-launch) would beat the fresh value. The daemon calls :func:`apply_session_fallbacks`
first thing, which fills in only what its environment lacks.

Imported by the daemon: standard library only.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping, MutableMapping

log = logging.getLogger(__name__)

#: the session variables the daemon needs (display, bus, audio), in the order they are written
SESSION_VARS = ("DISPLAY", "WAYLAND_DISPLAY", "XAUTHORITY", "XDG_SESSION_TYPE",
                "DBUS_SESSION_BUS_ADDRESS", "XDG_RUNTIME_DIR", "PULSE_SERVER")
#: these describe one display; a fresh one is never mixed with stale parts of another
_DISPLAY_VARS = ("DISPLAY", "WAYLAND_DISPLAY", "XAUTHORITY", "XDG_SESSION_TYPE")
FALLBACK_PREFIX = "CTRLSPEAK_SESSION_"


def session_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The :data:`SESSION_VARS` that are set (non-empty, one line) in ``environ``."""
    found: dict[str, str] = {}
    for name in SESSION_VARS:
        value = environ.get(name, "")
        if not value:
            continue
        if any(ord(ch) < 0x20 for ch in value):
            log.warning("%s holds control characters; not written to the service", name)
            continue
        found[name] = value
    return found


def apply_session_fallbacks(environ: MutableMapping[str, str]) -> list[str]:
    """Fill session variables missing from ``environ`` with the values recorded at install.

    Call before anything reads ``DISPLAY`` (pynput does at import). Returns the names set.
    """
    has_display = bool(environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY"))
    applied = []
    for name in SESSION_VARS:
        value = environ.get(FALLBACK_PREFIX + name)
        if not value or environ.get(name) or (has_display and name in _DISPLAY_VARS):
            continue
        environ[name] = value
        applied.append(name)
    if applied:
        log.info("session variables from the install-time fallback: %s", ", ".join(applied))
    return applied
