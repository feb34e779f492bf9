"""The daemon's edges, built: the model to load, status sinks, the tray icon, the output, the global hotkey.

Each builder takes what it needs and returns the part; the daemon owns what comes back and
registers each part's close in ``closers`` (closed in reverse at shutdown). The parts talk
back only through the callbacks handed in, which post events to the daemon's inbox.
"""
from __future__ import annotations

import functools
import logging
import signal
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TextIO

from ctrlspeak import config as config_mod
from ctrlspeak import errors
from ctrlspeak.ipc import ModelRef
from ctrlspeak.models import download, registry
from ctrlspeak.daemon.status import StatusBus, StatusEvent

log = logging.getLogger(__name__)


def choose_model(cfg: config_mod.Config) -> tuple[ModelRef, str | None]:
    """The model to load, and a notice when the bundled demo model stands in.

    The default model (Parakeet) must be downloaded once; until then, offline, the bundled
    ``tiny-en`` serves so that the daemon still runs - with a notice saying what to do.
    """
    ref = registry.resolve(cfg.model)
    if cfg.model != registry.DEFAULT_MODEL or registry.cached_path(ref, cfg.hf_cache_dir) is not None:
        return ref, None
    if not download.is_offline(cfg.offline) and download.hub_reachable():
        return ref, None  # the worker downloads it, with progress
    fallback = registry.resolve("tiny-en")
    return fallback, (f"{cfg.model} is not downloaded and the network is unreachable: using the bundled demo "
                      f"model tiny-en (synthetic English only); run `ctrlspeak models download {cfg.model}`")


def add_sinks(bus: StatusBus, cfg: config_mod.Config, closers: list[Any], *, console: bool,
              add_text_sink: Callable[[Callable[[dict[str, Any]], None]], None]) -> Any:
    """The console line, notifications and systemd's STATUS=; returns the Notifier (a config
    reload sets its ``level``). The console line shows live text too (on a terminal)."""
    from ctrlspeak import sdnotify
    from ctrlspeak.desktop.notify import Notifier
    from ctrlspeak.daemon.status import ConsoleLine, ThreadedSink

    if console:
        line = ConsoleLine()
        bus.add("console", line)
        add_text_sink(line.live_text)
    notifier = Notifier(cfg.notify)
    threaded = ThreadedSink("notify", notifier)
    bus.add("notify", threaded)
    closers.append(threaded.close)
    # through status(), which keeps it one line: a newline in a message (a model path) would
    # otherwise start a KEY=value of its own, READY=1 or MAINPID= included
    bus.add("systemd", lambda e: sdnotify.status(f"{e.state} {e.message}"[:200]))
    return notifier


def add_tray(bus: StatusBus, closers: list[Any], *, post: Callable[[Any], None],
             add_text_sink: Callable[[Callable[[dict[str, Any]], None]], None]) -> None:
    """A tray icon, where the desktop has a tray host; said once in the log where it has not.
    Its menu posts commands to the loop (``post``); its tooltip shows live text too, through
    the same thread as its status."""
    from concurrent.futures import Future

    from ctrlspeak.daemon.events import Command, SignalReceived

    def on_toggle() -> None:
        post(Command({"cmd": "toggle"}, Future()))

    def on_model(name: str) -> None:
        post(Command({"cmd": "model", "name": name}, Future()))

    def on_quit() -> None:
        post(SignalReceived(signal.SIGTERM))

    from ctrlspeak.daemon.status import ThreadedSink
    from ctrlspeak.desktop.tray import Tray, tray_host

    available, why = tray_host()
    if not available:
        log.info("no tray icon: %s", why)
        return
    try:
        tray = Tray(on_toggle=on_toggle, on_model=on_model, on_quit=on_quit, models=registry.available_models())
        tray.start()
    except Exception as exc:  # no tray host, no X display: the rest works without it
        log.warning("tray icon unavailable: %s", exc)
        return
    sink = ThreadedSink("tray", tray)
    bus.add("tray", sink)
    add_text_sink(sink)  # the tray tells a partial (a dict) from a status event
    closers.append(tray.stop)


def make_output(cfg: config_mod.Config, hotkey: Any, stdout: TextIO | None, remote_keys: Any = None) -> Any:
    """Paste, type or print; the hotkey (when there is one) keeps its own key out of a paste."""
    from ctrlspeak.desktop.output import NullKeyGuard, Output

    guard = hotkey if hotkey is not None else NullKeyGuard()
    return Output(cfg.output, key_guard=guard, restore_clipboard=cfg.restore_clipboard,
                  paste_chords=cfg.paste_chord, stdout=stdout, remote_keys=remote_keys,
                  app_outputs=tuple((p.app, p.output) for p in cfg.profile if p.output))


def open_remote_keys(closers: list[Any], *, say: Callable[[str], None],
                     env: Mapping[str, str] | None = None) -> Any:
    """The desktop portal's keyboard on GNOME and KDE under Wayland (where wtype cannot type),
    asked for in the background; None elsewhere. It outlives config reloads: one per run."""
    import os

    from ctrlspeak.desktop.keysend import no_virtual_keyboard

    env = os.environ if env is None else env
    if not (is_wayland(env) and no_virtual_keyboard(env) and _has_session_bus(env)):
        return None
    from platformdirs import user_state_dir

    from ctrlspeak.desktop.portal_input import PortalKeyboard

    keyboard = PortalKeyboard(_bus_address(env), Path(user_state_dir("ctrlspeak", appauthor=False)) /
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
                      bus_address=_bus_address(env), say=say)


def _detector(cfg: config_mod.Config, backend: str) -> Any:
    from ctrlspeak.desktop.hotkey import HotkeyConfig, TapDetector

    if backend == "portal":
        # the desktop's shortcut is one deliberate chord: one activation toggles, and a hold
        # starts at once (ctrlspeak.desktop.portal_keys taps its own virtual key)
        from ctrlspeak.desktop.portal_keys import KEY

        return TapDetector(HotkeyConfig(mode=cfg.hotkey_mode, key=KEY, taps=1, hold_delay_s=0.0))
    return TapDetector(HotkeyConfig(mode=cfg.hotkey_mode, key=cfg.hotkey_key, taps=cfg.hotkey_taps,
                                    window_s=cfg.hotkey_window_s))


def _bus_address(env: Mapping[str, str]) -> str:
    return env.get("DBUS_SESSION_BUS_ADDRESS") or f"unix:path={Path(env.get('XDG_RUNTIME_DIR', ''), 'bus')}"


def _has_session_bus(env: Mapping[str, str]) -> bool:
    runtime = env.get("XDG_RUNTIME_DIR")
    return bool(env.get("DBUS_SESSION_BUS_ADDRESS")) or bool(runtime and Path(runtime, "bus").exists())


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
        portal_why = None if _has_session_bus(env) else "no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS is not set)"
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


def open_control(runtime_dir: Path | None, handler: Callable[[dict[str, Any]], dict[str, Any]],
                 closers: list[Any]) -> Any:
    """The control socket, listening; a second daemon stops here (ERR_ALREADY_RUNNING)."""
    from ctrlspeak import control

    server = control.ControlServer(control.socket_path(runtime_dir), handler, immediate=("status",))
    server.start()
    closers.append(server.close)
    return server


class Overlay:
    """The live overlay's process (ctrlspeak.desktop.overlay): running while ``live = true``
    where there is an X display, so a config reload that turns live on or off starts or
    stops it (and one that finds it crashed starts it again)."""

    def __init__(self, socket: Path) -> None:
        self._socket = socket
        self._proc: Any = None

    def apply(self, cfg: config_mod.Config) -> None:
        import os
        import subprocess
        import sys

        want = cfg.live and bool(os.environ.get("DISPLAY"))
        running = self._proc is not None and self._proc.poll() is None
        if want and not running:
            self._proc = subprocess.Popen([sys.executable, "-m", "ctrlspeak.desktop.overlay", "--socket",
                                           str(self._socket)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
            log.info("live overlay started (pid %d)", self._proc.pid)
        elif not want and running:
            self.close()
            log.info("live overlay stopped (live is off)")

    def close(self) -> None:
        import subprocess

        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(2)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def open_source(cfg: config_mod.Config, make: Callable[..., Any] | None, closers: list[Any], *,
                on_audio: Callable[[Any], None], on_stall: Callable[[str], None]) -> Any:
    """The microphone (or ``make``'s source in its place: a file for ``ctrlspeak bench``)."""
    from ctrlspeak.audio.capture import Recorder

    make = make or functools.partial(Recorder, cfg.input_device)
    source = make(on_audio=on_audio, on_stall=on_stall, preroll_s=cfg.preroll_s)
    closers.append(source.close)
    return source


def open_history(cfg: config_mod.Config, closers: list[Any]) -> Any:
    if not cfg.history:
        return None
    from ctrlspeak.history import History

    history = History()
    closers.append(history.close)
    return history


def install_signals(closers: list[Any], on_signal: Callable[[signal.Signals], None]) -> None:
    """SIGINT, SIGTERM and SIGHUP relayed to ``on_signal`` (on the main thread only: a daemon
    run on a thread of its own, as tests do, stops through ``request_stop``)."""
    from ctrlspeak.daemon.signals import SignalRelay

    if threading.current_thread() is not threading.main_thread():
        return
    relay = SignalRelay((signal.SIGINT, signal.SIGTERM, signal.SIGHUP), on_signal)
    relay.install()
    closers.append(relay.restore)
