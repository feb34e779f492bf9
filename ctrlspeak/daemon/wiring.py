"""The daemon's edges, built: the model to load, status sinks, the tray icon, the output (the keys:
:mod:`ctrlspeak.daemon.key_sources`).

Each builder takes what it needs and returns the part; the daemon owns what comes back and
registers each part's close in ``closers`` (closed in reverse at shutdown). The parts talk
back only through the callbacks handed in, which post events to the daemon's inbox.
"""
from __future__ import annotations

import functools
import logging
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from ctrlspeak import config as config_mod
from ctrlspeak.ipc import ModelRef
from ctrlspeak.models import download, registry
from ctrlspeak.daemon.status import StatusBus

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
