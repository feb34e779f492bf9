"""The dictation daemon (``ctrlspeak run``): the loop, and the one owner of the daemon's state.

One main loop handles one event (:mod:`ctrlspeak.daemon.events`) at a time from its inbox;
every other thread only posts events to it, so there are no locks around the daemon's state,
and the loop is the only publisher of its status::

    hotkey listener ---\\                            /--> LiveRecording (the mic, the journal entry)
    control clients ----\\                          +--> Dictations --> Supervisor (segments)
    microphone ----------+--> inbox --> main loop --+--> output (paste), history
    supervisor ---------/       (events)            +--> WorkerLink, ModelView (the model)
    signal relay, tray -/                           \\--> Publisher --> console, tray, notify,
                                                                     socket followers, systemd
                                    live text (partials, never on the status bus) --> socket
                                    followers (the overlay process among them), console, tray

A recording's audio is cut at pauses and each segment goes to the worker while the person is
still speaking; a tap while the model loads records anyway (segments wait for the worker).
What is timed (the keep-alive's unload, PortAudio's release, a stop's grace) is a deadline:
the loop blocks on its inbox with the time left until the first as the timeout, no polling.
The worker's state is the supervisor's: the loop reads the newest
:class:`~ctrlspeak.supervision.worker_state.WorkerState` it was handed, never a copy of its own.
"""
from __future__ import annotations

import logging
import queue
import signal
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from ctrlspeak import config as config_mod
from ctrlspeak import errors
from ctrlspeak.daemon import commands, key_sources, wiring
from ctrlspeak.daemon.dictation import Dictations, Parts
from ctrlspeak.daemon.events import (AudioIn, Command, HotkeyPressed, KeysNotice, LiveDecodeDone, MicStalled,
                                     ModelSwitched, SegmentDone, SignalReceived, WorkerIsReady, WorkerProgress,
                                     WorkerStateChanged, WorkerTrouble)
from ctrlspeak.daemon.keepalive import KeepAlive
from ctrlspeak.daemon.live_decode import ChunkChoice, LivePacer, OpenSegment
from ctrlspeak.daemon.microphone import Microphone
from ctrlspeak.daemon.model_view import Busy
from ctrlspeak.daemon.publisher import Publisher, daemon_state
from ctrlspeak.daemon.recording import LiveRecording
from ctrlspeak.daemon.status import StatusEvent
from ctrlspeak.daemon.stopping import STOP_GRACE_S, RelayGuard, Stopping
from ctrlspeak.daemon.worker_link import WorkerLink
from ctrlspeak.ipc import ModelRef, StreamPiece, TranscribeOptions
from ctrlspeak.models import registry
from ctrlspeak.supervision.client import settings_from_config
from ctrlspeak.supervision.supervisor import SpeedEstimate, Supervisor
from ctrlspeak.supervision.worker_state import WorkerState
from ctrlspeak.text import context as text_context
from ctrlspeak.text import profile as text_profile

log = logging.getLogger(__name__)


class Daemon:
    def __init__(self, cfg: config_mod.Config, flags: dict[str, Any] | None = None, *,
                 console: bool = True, hotkey: bool = True, tray: bool | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 audio_source: Callable[..., Any] | None = None, stdout: TextIO | None = None,
                 runtime_dir: Path | None = None) -> None:
        """``audio_source(on_audio=, on_stall=, preroll_s=)`` makes the audio source in the
        microphone's place (a :class:`~ctrlspeak.audio.capture.FileSource` for ``ctrlspeak bench``);
        ``stdout`` is where output = "stdout" prints; ``runtime_dir`` holds the control socket."""
        self.cfg = cfg
        self._audio_source, self._stdout, self._runtime_dir = audio_source, stdout, runtime_dir
        self._flags = flags or {}
        self._inbox: queue.Queue[Any] = queue.Queue()
        self._want_console, self._want_hotkey = console, hotkey
        self._want_tray = cfg.tray if tray is None else tray
        self._clock = clock
        self._closers: list[Any] = []  # closed in reverse at shutdown
        #: the Supervisor, the newest WorkerState the loop handled, and what is said about the model
        self._link = WorkerLink()
        self._pub = Publisher(self._state, self._link.snapshot, self._model_name, console=console)
        self.status = self._pub.bus
        self._stop = Stopping(clock)
        self._relay_guard = RelayGuard(self._link.kill)
        self._keepalive = KeepAlive(cfg.keep_alive_minutes)
        self._mic = Microphone(clock)  # the audio source, and PortAudio's release between recordings
        self._hotkey: Any = None
        self._remote_keys: Any = None  # the desktop portal's keyboard (GNOME, KDE): one per run
        self._control: Any = None
        self._vad: Any = None
        self._notifier: Any = None
        self._overlay: Any = None
        #: the edges a dictation's text goes to (output, history, journal), set up in start()
        self._parts = Parts()
        self._parts.text = text_context.from_config(cfg)
        #: the source language of the recording being made (a profile's, for the app it started in)
        self._language = cfg.language
        self._dictations = Dictations(
            self._parts, submit=self._submit, on_done=lambda sid, i, f: self.post(SegmentDone(sid, i, f)),
            publish=self._publish, publish_error=self._publish_error, settle=self._pub.settle,
            model_name=self._model_name, on_partial=self._pub.partial)
        #: the recording being made (its session, its journal entry, its segmenter, its live text)
        self._live = LiveRecording(self._mic, self._dictations, self._link, self._pub, OpenSegment(
            LivePacer(cfg.live_interval_s, clock), self._submit,
            on_done=lambda sid, i, f: self.post(LiveDecodeDone(sid, i, f)),
            chunk_ms=ChunkChoice(lambda: self._link.state.ready, lambda: self.cfg.stream_chunk_ms)))
        self._handlers: dict[type, Callable[[Any], None]] = {
            AudioIn: lambda e: self._on_audio(e.audio),
            SegmentDone: lambda e: self._dictations.segment_done(self._live.session, e.session, e.index, e.future),
            LiveDecodeDone: lambda e: self._live.decode_done(e.session, e.index, e.future),
            HotkeyPressed: lambda e: commands.on_hotkey(self, e.event, e.at),
            Command: self._on_command,
            WorkerProgress: lambda e: self._on_progress(e.progress),
            WorkerStateChanged: lambda e: self._link.take(e.state),
            WorkerIsReady: self._on_worker_ready,
            WorkerTrouble: lambda e: self._pub.say(self._link.view.trouble(e.error, e.final, self._link.state,
                                                                           self._busy())),
            ModelSwitched: lambda e: self._pub.say(self._link.view.switched(e.future, self._link.state)),
            MicStalled: lambda e: self._on_stall(e.reason),
            KeysNotice: lambda e: self._publish(StatusEvent("notice", e.message)),
            SignalReceived: lambda e: self._handle_signal(e.signum),
        }

    # -- set-up -------------------------------------------------------------------------
    def start(self) -> None:
        from ctrlspeak.audio.vad import make_vad

        # the socket first: a second daemon must stop here, before it spawns a worker of its own
        self._control = wiring.open_control(self._runtime_dir, self._handle_request, self._closers)
        self._setup_sinks()
        self.status.add("socket", lambda e: self._control.publish({"event": "status", **e.to_json()}))
        self.add_text_sink(self._control.publish)
        self._overlay = wiring.Overlay(self._control.path)
        self._closers.append(self._overlay.close)
        self._overlay.apply(self.cfg)
        self._vad = make_vad()
        model, notice = wiring.choose_model(self.cfg)
        self._start_worker(model)  # then at once: loading takes longest
        if notice:
            self._publish(StatusEvent("notice", notice, model=model.name))
        self._mic.source = wiring.open_source(self.cfg, self._audio_source, self._closers,
                                              on_audio=lambda a: self.post(AudioIn(a)),
                                              on_stall=lambda why: self.post(MicStalled(why)))
        if self._audio_source is None:
            self._mic.check(self.cfg.input_device, self._publish_error)
        if self._want_hotkey:  # an interactive run (not bench): on GNOME and KDE the portal types for us
            self._remote_keys = key_sources.open_remote_keys(self._closers, say=lambda m: self.post(KeysNotice(m)))
        self._setup_output()
        if self._want_hotkey:
            self._hotkey = key_sources.start_hotkey(self.cfg, self._closers,
                                                    post=lambda e: self.post(HotkeyPressed(e)),
                                                    publish=self._publish, say=lambda m: self.post(KeysNotice(m)))
            self._setup_output()  # now with the hotkey as the key guard
        self._parts.history = wiring.open_history(self.cfg, self._closers)
        if self.cfg.journal:
            self._open_journal()
        wiring.install_signals(self._closers, self._on_signal)

    def _open_journal(self, recover: bool = True) -> bool:
        return self._dictations.open_journal(self.cfg.keep_recordings, self._vad, recover=recover)

    def _setup_sinks(self) -> None:
        self._notifier = wiring.add_sinks(self.status, self.cfg, self._closers, console=self._want_console,
                                          add_text_sink=self.add_text_sink)
        if self._want_tray:
            wiring.add_tray(self.status, self._closers, post=self.post, add_text_sink=self.add_text_sink)

    def _setup_output(self) -> None:
        self._parts.output = wiring.make_output(self.cfg, self._hotkey, self._stdout, self._remote_keys)

    def _start_worker(self, ref: ModelRef) -> None:
        self._link.start(lambda r: settings_from_config(self.cfg, r), ref, post=self.post,
                         speed=SpeedEstimate(margin_s=self.cfg.hang_margin_s))
        self._publish(StatusEvent("loading", f"starting {ref.name}", percent=0.0, model=ref.name))
        self._link.launch()

    # -- the loop -----------------------------------------------------------------------
    def run(self) -> int:
        try:
            self.start()
            self._loop()
        finally:
            self.shutdown()  # also after a start that failed half way: nothing is left running
        return self._stop.exit_status

    def _loop(self) -> None:
        while True:
            try:
                # with nothing due this blocks until an event comes: idle costs no CPU
                event = self._inbox.get(timeout=self._next_wait())
            except queue.Empty:
                event = None
            if event is not None:
                try:
                    self._dispatch(event)
                except Exception:
                    log.exception("error handling %s", type(event).__name__)
            self._keep_alive_tick()
            self._audio_tick()
            if self._stop.should_exit(self._idle(), self._kept_in_journal):
                break

    def _kept_in_journal(self) -> list[bool]:
        return [session.in_journal for session in self._dictations.finishing.values()]

    def _dispatch(self, event: Any) -> None:
        handler = self._handlers.get(type(event))
        if handler is not None:
            handler(event)

    def _idle(self) -> bool:
        return self._live.session is None and not self._dictations.finishing

    def _next_wait(self) -> float | None:
        """Seconds until something timed is due (None: nothing is, block)."""
        now = self._clock()
        waits = [w for w in (self._keepalive.wait_s(now), self._mic.wait_s(now), self._stop.wait_s(now))
                 if w is not None]
        return min(waits) if waits else None

    def _audio_tick(self) -> None:
        self._mic.tick(recording=self._live.session is not None)

    def _can_unload(self) -> bool:
        return self._keepalive.enabled and self._idle() and not self._stop.requested and self._link.unloadable

    def _keep_alive_tick(self) -> None:
        if not self._keepalive.tick(self._clock(), self._can_unload, self._link.unload):
            return
        model, minutes = self._model_name(), self.cfg.keep_alive_minutes
        log.info("%s unloaded after %g idle minute(s)", model, minutes)
        self._publish(StatusEvent("idle", f"{model} unloaded after {minutes:g} idle minute(s) to free memory; "
                                          "it reloads at the next dictation", model=model))

    def shutdown(self) -> None:
        from ctrlspeak import sdnotify

        sdnotify.stopping()
        if self._dictations.unsaved:  # history refused them: one last try (their journal entries stay otherwise)
            self._dictations.flush_unsaved()
        self._link.close(timeout=5.0)
        for close in reversed(self._closers):
            try:
                close()
            except Exception:
                log.exception("error while shutting down")
        self._closers.clear()
        self._relay_guard.exited.set()

    # -- recording ----------------------------------------------------------------------
    def start_recording(self, source: str) -> errors.CtrlspeakError | None:
        """Start a recording; returns the error (already published) when it cannot."""
        if self._live.session is not None or self._stop.requested:
            return None
        # chosen once a recording, where it starts: its segments are all in one language
        self._language = text_profile.language_for(
            self.cfg.profile, getattr(self._parts.output, "app_names", tuple), self.cfg.language)
        try:
            pre = self._live.start(self.cfg, self._vad, source)
        except errors.CtrlspeakError as exc:
            return exc
        if pre.size:
            self._on_audio(pre)
        return None

    def stop_recording(self, reason: str = "", at: float | None = None) -> None:
        self._live.stop(reason, at)

    def cancel_recording(self) -> None:
        self._live.cancel()

    def toggle(self, source: str, at: float | None = None) -> errors.CtrlspeakError | None:
        if self._live.session is None:
            return self.start_recording(source)
        self.stop_recording(at=at)
        return None

    def _on_audio(self, audio: np.ndarray) -> None:
        audio_s = self._live.feed(audio)
        if audio_s is not None and audio_s >= self.cfg.max_record_s:
            self.stop_recording(f"maximum length of {self.cfg.max_record_s:.0f} s reached; the audio is kept")
            self._publish(StatusEvent("notice", f"recording stopped at the {self.cfg.max_record_s:.0f} s limit"))

    def _on_stall(self, reason: str) -> None:
        if self._live.session is None:
            return
        # said first: the transcription may well be done before the next line is printed
        self._publish_error(errors.AudioDeviceError(f"{reason}; the audio recorded so far is being transcribed"))
        self.stop_recording(f"the microphone stopped: {reason}")

    def _submit(self, audio: np.ndarray, stream: StreamPiece | None = None) -> Future:
        options = TranscribeOptions(self._language, self.cfg.target_language, self.cfg.punctuation, stream)
        return self._link.submit(audio, options)

    # -- what other parts read ------------------------------------------------------------
    @property
    def supervisor(self) -> Supervisor | None:
        """The worker's supervisor (None before start()): ``ctrlspeak bench`` times it directly."""
        return self._link.supervisor

    @property
    def dictations(self) -> Dictations:
        """The recordings between their stop and history (tests and ``bench`` read it)."""
        return self._dictations

    @property
    def parts(self) -> Parts:
        """The edges a dictation's text goes to: output, history, journal (None until start())."""
        return self._parts

    @property
    def worker_state(self) -> WorkerState:
        """The supervisor's WorkerState as of the last event the loop handled (see WorkerLink)."""
        return self._link.state

    @property
    def recording(self) -> bool:
        """A recording is being made (the microphone is live)."""
        return self._live.session is not None

    @property
    def exit_status(self) -> int:
        """0, or FORCED_EXIT_STATUS after a forced stop: what ``run()`` returns."""
        return self._stop.exit_status

    def snapshot(self) -> dict[str, Any]:
        """What ``ctrlspeak status`` says: the state, the model, the worker, the last event."""
        return self._pub.snapshot()

    def _model_name(self) -> str:
        return self._link.model_name

    # -- the model (ModelView decides what is said, the loop publishes it) -----------------
    def _busy(self) -> Busy:
        return Busy(recording=self._live.session is not None, finishing=bool(self._dictations.finishing),
                    state=self._state())

    def _on_progress(self, p: Any) -> None:
        self._pub.say(self._link.view.progress(p, self._link.state, self._busy(), self._clock()))

    def _on_worker_ready(self, event: WorkerIsReady) -> None:
        from ctrlspeak import sdnotify

        sdnotify.ready()
        message, said = self._link.view.ready(event.ready, self._link.state, self._busy())
        if self._link.state.booted_by == "reload":
            log.info("reloaded %s", message)
        self._pub.say(said)

    def switch_model(self, name: str) -> dict[str, Any]:
        ref = registry.resolve(name)
        self._publish(StatusEvent("loading", f"switching to {ref.name}", percent=0.0, model=ref.name))
        future = self._link.switch(ref)
        future.add_done_callback(lambda f: self.post(ModelSwitched(ref, f)))
        return {"switching": ref.name}

    # -- commands, the hotkey, signals ------------------------------------------------------
    def _handle_request(self, request: dict[str, Any]) -> dict[str, Any]:
        """Called on the control server's thread (see commands.handle_request)."""
        return commands.handle_request(self, self._control, request)

    def _on_command(self, event: Command) -> None:
        commands.answer(self, event)

    def add_text_sink(self, sink: Callable[[dict[str, Any]], None]) -> None:
        """Where live text goes (the control socket's followers): never the status bus."""
        self._pub.add_text_sink(sink)

    def post(self, event: Any) -> None:
        """Hand an event (:mod:`ctrlspeak.daemon.events`) to the loop; safe from any thread."""
        self._inbox.put(event)

    def preroll(self) -> None:
        """Open the microphone ahead of a recording (the hotkey is armed): nothing is cut off."""
        self._mic.preroll()

    def close_microphone(self) -> None:
        """Close it again (the tap sequence broke off); PortAudio follows AUDIO_RELEASE_S later."""
        self._mic.close_soon()

    # As uvicorn's Server.handle_exit: a signal only posts SignalReceived to the inbox, and the loop acts
    # on it. The first stop lets the dictations in flight finish within STOP_GRACE_S; a second
    # one forces the exit (the worker killed, FORCED_EXIT_STATUS).
    def request_stop(self) -> None:
        """Stop as SIGTERM does (the transcription in flight is finished, within STOP_GRACE_S,
        then run() returns). Safe from any thread: for a daemon run on a thread of its own."""
        self.post(SignalReceived(int(signal.SIGTERM)))

    def _on_signal(self, sig: signal.Signals) -> None:
        """Runs on the signal relay's thread: post, and after a second stop signal stand by."""
        self.post(SignalReceived(int(sig)))
        if sig != signal.SIGHUP:
            self._relay_guard.stop_signal()

    def _handle_signal(self, signum: int) -> None:
        if signum == signal.SIGHUP:
            self.reload_config()
            return
        name = signal.Signals(signum).name
        if not self._stop.request():
            log.warning("second stop signal (%s): exiting now", name)
            self._link.kill()
            return
        log.info("stopping (%s): finishing the transcription in flight (at most %.0f s)", name, STOP_GRACE_S)
        if self._live.session is not None:
            self.stop_recording("stopping")
        self._publish(StatusEvent("idle", "stopping"))

    def reload_config(self) -> None:
        try:
            new = config_mod.load(self._flags)
        except errors.CtrlspeakError as exc:
            self._publish_error(errors.ConfigError(f"config not reloaded, keeping the old one: {exc.message}"))
            return
        old, self.cfg = self.cfg, new
        self._parts.text = text_context.from_config(new)  # [words] and the rest: the next dictation uses them
        if new.keep_alive_minutes != old.keep_alive_minutes:
            self._keepalive = KeepAlive(new.keep_alive_minutes)
        self._setup_output()
        if self._notifier is not None:
            self._notifier.level = new.notify
        if self._overlay is not None:
            self._overlay.apply(new)
        log.info("config reloaded")
        if new.model != old.model:
            try:
                self.switch_model(new.model)
            except errors.CtrlspeakError as exc:
                self._publish_error(exc)
        self._publish(StatusEvent("notice", "config reloaded"))

    # -- status -------------------------------------------------------------------------
    def _state(self) -> str:
        return daemon_state(recording=self._live.session is not None, finishing=bool(self._dictations.finishing),
                            unloaded=self._link.unloaded, worker=self._link.state)

    def _publish(self, event: StatusEvent) -> None:
        self._pub.publish(event)

    def _publish_error(self, exc: errors.CtrlspeakError) -> None:
        self._pub.error(exc)
