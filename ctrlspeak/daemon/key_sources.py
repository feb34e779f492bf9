"""Where the daemon's keys come from and go to in this session: the global hotkey's source
(X11, the kernel's input devices, sway's or Hyprland's IPC, the desktop portal's shortcut) and,
on GNOME and KDE under Wayland, the portal's remote keyboard that pastes and types.

Each is chosen from the session's environment, started, and its closer registered; where none
works the daemon says why once and runs on, driven by `ctrlspeak toggle`.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ctrlspeak import config as config_mod
from ctrlspeak import errors
from ctrlspeak.daemon.status import StatusEvent
from ctrlspeak.desktop.portal import session_bus_address

log = logging.getLogger(__name__)


def open_remote_keys(closers: list[Any], *, say: Callable[[str], None],
                     env: Mapping[str, str] | None = None) -> Any:
    """The desktop portal's keyboard on GNOME and KDE under Wayland (where wtype cannot type),
    asked for in the background; None elsewhere. It outlives config reloads: one per run."""
    import os

    from ctrlspeak.desktop.keysend import no_virtual_keyboard

    env = os.environ if env is None else env
    if not (is_wayland(env) and no_virtual_keyboard(env) and session_bus_address(env)):
        return None
    from platformdirs import user_state_dir

    from ctrlspeak.desktop.portal_input import PortalKeyboard

    keyboard = PortalKeyboard(session_bus_address(env), Path(user_state_dir("ctrlspeak", appauthor=False)) /
                              "portal-restore-token", say=say)
    keyboard.start()
    closers.append(keyboard.close)
    return keyboard


DOCTOR_HINT = "run `ctrlspeak doctor` to see what to fix, or bind `ctrlspeak toggle` to a desktop shortcut"


def pick_backend(setting: str, env: Mapping[str, str], *, evdev_ok: bool, compositor_ok: bool,
                 portal_ok: bool = False) -> str:
    """Where global keys come from: "x11", "evdev", "compositor", "portal" or "none".

    An explicit setting is taken as it is (its source says why, if it cannot run). "auto":
    pynput in an X11 session, and where there is no Wayland at all (macOS, or no display,
    where pynput's own check says what is missing); under Wayland the kernel's input
    devices when readable, else sway's or Hyprland's IPC, else the portal's GlobalShortcuts (one
    shortcut, not a triple tap) where a session bus exists, else none: XWayland's keys would
    be seen only while an X11 window has focus, a hotkey that works now and then.
    """
    if setting != "auto":
        return setting
    if not is_wayland(env):
        return "x11"
    if evdev_ok:
        return "evdev"
    if compositor_ok:
        return "compositor"
    if portal_ok:
        return "portal"
    return "none"


def is_wayland(env: Mapping[str, str]) -> bool:
    return bool(env.get("WAYLAND_DISPLAY")) or env.get("XDG_SESSION_TYPE") == "wayland"


def _compositor_source(env: Mapping[str, str]) -> tuple[Any, str | None]:
    """The compositor's IPC key source (sway's, else Hyprland's), or None and why (it may not
    be part of this ctrlspeak)."""
    try:
        if env.get("SWAYSOCK"):
            from ctrlspeak.desktop.compositor_keys import CompositorKeys

            return CompositorKeys(socket_path=env.get("SWAYSOCK")), None
        from ctrlspeak.desktop.hyprland_keys import HyprlandKeys, socket_path
    except ImportError as exc:
        return None, f"the compositor key source is unavailable ({exc})"
    return HyprlandKeys(socket_path(env)), None


def _compositor_problem(env: Mapping[str, str]) -> str | None:
    if env.get("SWAYSOCK"):
        return None
    from ctrlspeak.desktop.hyprland_keys import socket_path

    if socket_path(env):
        return None
    return "not a sway or Hyprland session (SWAYSOCK is not set, and no Hyprland event socket was found)"


def _portal_source(cfg: config_mod.Config, env: Mapping[str, str], say: Callable[[str], None]) -> Any:
    from ctrlspeak.desktop.portal_keys import PortalKeys
    from ctrlspeak.desktop.shortcuts import detect_desktop

    return PortalKeys(hold=cfg.hotkey_mode == "hold", desktop=detect_desktop(env) or "other",
                      bus_address=session_bus_address(env), say=say)


def _detector(cfg: config_mod.Config, backend: str) -> Any:
    from ctrlspeak.desktop.hotkey import HotkeyConfig, TapDetector

    if backend == "portal":
        # the desktop's shortcut is one deliberate chord: one activation toggles, and a hold
        # starts at once (ctrlspeak.desktop.portal_keys taps its own virtual key)
        from ctrlspeak.desktop.portal_keys import KEY

        return TapDetector(HotkeyConfig(mode=cfg.hotkey_mode, key=KEY, taps=1, hold_delay_s=0.0))
    return TapDetector(HotkeyConfig(mode=cfg.hotkey_mode, key=cfg.hotkey_key, taps=cfg.hotkey_taps,
                                    window_s=cfg.hotkey_window_s))


def start_hotkey(cfg: config_mod.Config, closers: list[Any], *, post: Callable[[Any], None],
                 publish: Callable[[StatusEvent], None], env: Mapping[str, str] | None = None,
                 say: Callable[[str], None] | None = None) -> Any:
    """The global hotkey listener, posting each tap event; None (said once) where no key source
    works: the daemon runs on, driven by `ctrlspeak toggle` over the socket. ``say`` carries a
    key source's later notices (from its own thread) to the person."""
    import os

    from ctrlspeak.desktop.keyboard import GlobalHotkey

    env = os.environ if env is None else env
    setting = cfg.hotkey_backend
    if setting == "none":
        log.info("global keys off (hotkey_backend = none): `ctrlspeak toggle` drives dictation")
        return None
    wayland_auto = setting == "auto" and is_wayland(env)
    evdev_why = None
    if wayland_auto or setting == "evdev":
        from ctrlspeak.desktop.evdev_keys import evdev_problem

        evdev_why = evdev_problem()
    compositor_why = None
    if wayland_auto or setting == "compositor":
        compositor_why = _compositor_problem(env)
    portal_why = None
    if wayland_auto or setting == "portal":
        portal_why = None if session_bus_address(env) else "no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS is not set)"
    backend = pick_backend(setting, env, evdev_ok=evdev_why is None,
                           compositor_ok=compositor_why is None, portal_ok=portal_why is None)
    source, why = None, None
    if backend == "x11":
        from ctrlspeak.desktop.x11_keys import X11Keys

        source = X11Keys()
    elif backend == "evdev":
        from ctrlspeak.desktop.evdev_keys import EvdevKeys

        source, why = (EvdevKeys(), None) if evdev_why is None else (None, f"evdev: {evdev_why}")
    elif backend == "compositor":
        source, why = _compositor_source(env) if compositor_why is None else (None, compositor_why)
        if source is None and setting == "auto":
            why = f"evdev: {evdev_why}; compositor: {why}"
    elif backend == "portal":
        source, why = (_portal_source(cfg, env, say or log.warning), None) if portal_why is None else (None, portal_why)
    else:
        why = f"Wayland session, and evdev: {evdev_why}; compositor: {compositor_why}; portal: {portal_why}"
    if source is not None:
        hotkey = GlobalHotkey(_detector(cfg, backend), post, source=source)
        try:
            hotkey.start()
        except errors.HotkeyUnavailable as exc:
            why = exc.message
            if setting == "auto" and backend == "portal":
                why = f"evdev: {evdev_why}; compositor: {compositor_why}; portal: {why}"
        else:
            closers.append(hotkey.stop)
            return hotkey
    publish(StatusEvent("notice", f"global keys unavailable ({why}); {DOCTOR_HINT}"))
    return None
