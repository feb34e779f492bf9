"""Whether this session lets a program read global keys: X11 and its RECORD extension, Wayland, macOS.

:func:`hotkey_available` is the cheap probe ``ctrlspeak doctor`` asks; :class:`GlobalHotkey`
(:mod:`ctrlspeak.desktop.keyboard`) asks :func:`x11_problem` before it starts pynput, whose
import raises on Linux without a reachable X display.
"""
from __future__ import annotations

import os
import sys
import threading

PROBE_TIMEOUT_S = 3.0  # an X server that accepts the socket but never answers

NO_X11_HINT = "global keys need an X11 session (or XWayland); bind `ctrlspeak toggle` to a desktop shortcut instead"
MACOS_PERMISSION = (
    "macOS does not let this program read the keyboard: allow your terminal (or the Python "
    "running ctrlspeak) in System Settings > Privacy & Security > Accessibility and Input "
    "Monitoring, then restart ctrlspeak"
)


def uses_x11() -> bool:
    # pynput's own choice: xorg everywhere but macOS and Windows, unless overridden
    return sys.platform not in ("darwin", "win32") and not os.environ.get("PYNPUT_BACKEND")


def is_wayland() -> bool:
    return bool(os.environ.get("WAYLAND_DISPLAY")) or os.environ.get("XDG_SESSION_TYPE") == "wayland"


def x11_problem(display: str | None, timeout: float = PROBE_TIMEOUT_S) -> str | None:
    """Why pynput's X11 listener cannot work on ``display``, or None if it can."""
    if not display:
        if is_wayland():
            return "this is a Wayland session without X11 (DISPLAY is not set): global keys cannot be read under Wayland"
        return "no X display: DISPLAY is not set"
    outcome: list[str | None] = []

    def probe() -> None:
        try:
            import Xlib.display
            import Xlib.error
        except ImportError as exc:
            outcome.append(f"python-xlib is missing ({exc}); reinstall ctrlspeak's dependencies")
            return
        try:
            conn = Xlib.display.Display(display)
        except (Xlib.error.DisplayError, Xlib.error.ConnectionClosedError, OSError) as exc:
            outcome.append(f"cannot connect to X display {display!r}: {exc}")
            return
        try:
            if conn.has_extension("RECORD"):
                outcome.append(None)
            else:
                outcome.append(f"the X server on {display!r} lacks the RECORD extension that reading global keys needs")
        finally:
            conn.close()

    # A thread, so that a server which accepts the connection and never answers costs
    # `timeout` seconds rather than a hung daemon.
    thread = threading.Thread(target=probe, name="ctrlspeak-x11-probe", daemon=True)
    thread.start()
    thread.join(timeout)
    if not outcome:
        return f"the X server on {display!r} did not answer within {timeout:g} s"
    return outcome[0]


def _macos_trusted() -> bool | None:
    """Whether macOS lets this process monitor input; None if that cannot be asked."""
    try:
        import HIServices  # pyobjc, installed with pynput on macOS
    except ImportError:
        return None
    return bool(HIServices.AXIsProcessTrusted())


def hotkey_available() -> tuple[bool, str]:
    """A cheap probe for ``ctrlspeak doctor``: (works?, one line saying why / what to do)."""
    if sys.platform == "darwin":
        trusted = _macos_trusted()
        if trusted is False:
            return False, MACOS_PERMISSION
        if trusted is None:
            return False, "pyobjc is missing, so pynput cannot read the keyboard: reinstall ctrlspeak's dependencies"
        return True, "global keys available (macOS accessibility permission granted)"
    if uses_x11():
        display = os.environ.get("DISPLAY")
        problem = x11_problem(display)
        if problem:
            return False, f"{problem}; {NO_X11_HINT}"
    try:
        import pynput.keyboard  # noqa: F401  (the import itself is the check)
    except ImportError as exc:
        return False, f"pynput cannot read the keyboard: {str(exc).splitlines()[0]}"
    if uses_x11() and is_wayland():
        return True, (
            "global keys work only while an X11 (XWayland) window has focus in this Wayland "
            "session; bind `ctrlspeak toggle` to a desktop shortcut for the rest"
        )
    if uses_x11():
        return True, f"global keys available on X11 display {os.environ.get('DISPLAY')}"
    return True, "global keys available"
