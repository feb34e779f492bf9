"""The dictation daemon (``ctrlspeak run``): the loop, and the one owner of the daemon's state.

One main loop handles one event (:mod:`ctrlspeak.daemon.events`) at a time from its inbox;
every other thread only posts events to it. So there are no locks around the daemon's
state, and the loop is the only publisher of its status::

    hotkey listener ---\\                            /--> LiveRecording (the mic, the journal entry)
    control clients ----\\                          +--> Dictations --> Supervisor (segments)
    microphone ----------+--> inbox --> main loop --+--> output (paste), history
    supervisor ---------/       (events)            +--> ModelView (what is said about the model)
    signal relay, tray -/                           \\--> status bus --> console, tray, notify,
                                                                       socket followers, systemd

A recording is a :class:`Session`. Its audio is cut at pauses (:class:`Segmenter`) and
each segment goes to the worker while the person is still speaking, so after the stop
tap only the last segment is left to transcribe. A tap while the model is still loading
records anyway: segments wait for the worker and are sent once it is ready.

With ``keep_alive_minutes`` set, a daemon idle that long stops its worker to free the
model's memory (never while recording or transcribing); the next tap records at once and
reloads it, and the segments wait for it as they do at the first start. The main loop
blocks on its inbox with the time left until then as the timeout: no polling.

A stop (SIGTERM, SIGINT, the tray's Quit) is one more event: the loop lets the dictations in
flight finish within STOP_GRACE_S, a deadline like the keep-alive's, and a second stop signal
forces the exit; the journal keeps whatever was not transcribed.

The worker's state (ready, model, gave up, switching, unloaded) is the supervisor's:
the loop reads the newest :class:`~ctrlspeak.supervision.worker_state.WorkerState` it was handed
(``worker_state``), never a copy of its own.
"""
from __future__ import annotations

import functools
import logging
import os
import queue
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from ctrlspeak import config as config_mod
from ctrlspeak import errors
from ctrlspeak.daemon import commands, wiring
from ctrlspeak.daemon.dictation import Dictations, Parts
from ctrlspeak.daemon.model_view import REFRESH, Busy, Say
from ctrlspeak.daemon.events import (AudioIn, Command, HotkeyPressed, MicStalled, ModelSwitched, SegmentDone,
                                     SignalReceived, WorkerIsReady, WorkerProgress, WorkerStateChanged, WorkerTrouble)
from ctrlspeak.ipc import ModelRef, Progress, TranscribeOptions, WorkerSettings
from ctrlspeak.daemon.keepalive import KeepAlive
from ctrlspeak.daemon.microphone import Microphone
from ctrlspeak.daemon.recording import LiveRecording
from ctrlspeak.daemon.worker_link import WorkerLink
from ctrlspeak.daemon.stopping import STOP_GRACE_S, RelayGuard, Stopping
from ctrlspeak.models import registry
from ctrlspeak.daemon.status import StatusBus, StatusEvent
from ctrlspeak.supervision.supervisor import SpeedEstimate, Supervisor  # noqa: F401 (Supervisor: a type)
from ctrlspeak.supervision.client import settings_from_config
from ctrlspeak.supervision.worker_state import WorkerState

log = logging.getLogger(__name__)

#: after these boot errors a new dictation tries the download again (the partial is kept):
#: the network or the disk may have been fixed meanwhile
_RETRY_DOWNLOAD_ON = ("ERR_MODEL_DOWNLOAD", "ERR_DISK_SPACE", "ERR_MODEL_NOT_CACHED")


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
        self._audio_source = audio_source
        self._stdout = stdout
        self._runtime_dir = runtime_dir
        self._flags = flags or {}
        self._inbox: queue.Queue[Any] = queue.Queue()
        self.status = StatusBus()
        self._want_console = console
        self._want_hotkey = hotkey
        self._want_tray = cfg.tray if tray is None else tray
        #: the Supervisor, the newest WorkerState the loop handled, and what is said about the model
        self._link = WorkerLink()
        self._stop = Stopping(clock)
        self._closers: list[Any] = []
        self._snapshot: dict[str, Any] = {"state": "loading"}
        self._relay_guard = RelayGuard(self._link.kill)
        self._clock = clock
        self._keepalive = KeepAlive(cfg.keep_alive_minutes)
        self._mic = Microphone(clock)  # the audio source, and PortAudio's release between recordings
        # parts created in start()
        self._hotkey: Any = None
        self._control: Any = None
        self._vad: Any = None
        #: the edges a dictation's text goes to (output, history, journal), set up in start()
        self._parts = Parts()
        self._dictations = Dictations(
            self._parts, submit=self._submit, on_done=lambda sid, i, f: self._inbox.put(SegmentDone(sid, i, f)),
            publish=self._publish, publish_error=self._publish_error, settle=self._settle,
            model_name=lambda: self._model_name())
        #: the recording being made (its session, its journal entry, its segmenter)
        self._live = LiveRecording(self._mic, self._dictations, sound=self._sound)

    # -- set-up -------------------------------------------------------------------------
    def start(self) -> None:
        from ctrlspeak import control
        from ctrlspeak.audio.capture import Recorder
        from ctrlspeak.daemon.signals import SignalRelay
        from ctrlspeak.audio.vad import make_vad

        # the socket first: a second daemon must stop here, before it spawns a worker of its own
        self._control = control.ControlServer(control.socket_path(self._runtime_dir), self._handle_request,
                                              immediate=("status",))
        self._control.start()
        self._closers.append(self._control.close)
        self._setup_sinks()
        self.status.add("socket", lambda e: self._control.publish({"event": "status", **e.to_json()}))
        self._vad = make_vad()
        model, notice = wiring.choose_model(self.cfg)
        self._start_worker(model)  # then at once: loading takes longest
        if notice:
            self._publish(StatusEvent("notice", notice, model=model.name))
        make_source = self._audio_source or functools.partial(Recorder, self.cfg.input_device)
        self._mic.source = make_source(on_audio=lambda a: self._inbox.put(AudioIn(a)),
                                       on_stall=lambda why: self._inbox.put(MicStalled(why)),
                                       preroll_s=self.cfg.preroll_s)
        self._closers.append(self._mic.source.close)
        if self._audio_source is None:
            self._mic.check(self.cfg.input_device, self._publish_error)
        self._setup_output()
        if self._want_hotkey:
            self._setup_hotkey()
        if self.cfg.history:
            from ctrlspeak.history import History

            self._parts.history = History()
            self._closers.append(self._parts.history.close)
        if self.cfg.journal:
            self._open_journal()
        if threading.current_thread() is threading.main_thread():
            relay = SignalRelay((signal.SIGINT, signal.SIGTERM, signal.SIGHUP),
                                lambda sig: self._on_signal(sig))
            relay.install()
            self._closers.append(relay.restore)

    def _open_journal(self, recover: bool = True) -> bool:
        return self._dictations.open_journal(self.cfg.keep_recordings, self._vad, recover=recover)

    def _setup_sinks(self) -> None:
        self._notifier = wiring.add_sinks(self.status, self.cfg, self._closers, console=self._want_console)
        if self._want_tray:
            wiring.add_tray(self.status, self._closers,
                            on_toggle=lambda: self._post_command({"cmd": "toggle"}),
                            on_model=lambda name: self._post_command({"cmd": "model", "name": name}),
                            on_quit=lambda: self._inbox.put(SignalReceived(signal.SIGTERM)))

    def _setup_output(self) -> None:
        self._parts.output = wiring.make_output(self.cfg, self._hotkey, self._stdout)

    def _setup_hotkey(self) -> None:
        self._hotkey = wiring.start_hotkey(self.cfg, self._closers, post=lambda event: self._inbox.put(HotkeyPressed(event)),
                                           publish=self._publish)
        if self._hotkey is not None:
            self._setup_output()  # now with the hotkey as the key guard

    def _worker_settings(self, ref: ModelRef) -> WorkerSettings:
        return settings_from_config(self.cfg, ref)

    def _start_worker(self, ref: ModelRef) -> None:
        self._link.start(self._worker_settings, ref, post=self.post,
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
            if self._stop.forced or (self._stop.requested and (self._idle() or self._stop_overdue())):
                break

    def _idle(self) -> bool:
        return self._live.session is None and not self._dictations.finishing

    def _next_wait(self) -> float | None:
        """Seconds until something timed is due (None: nothing is, block)."""
        now = self._clock()
        waits = [w for w in (self._keepalive.wait_s(now),
                             self._mic.wait_s(now),
                             self._stop.wait_s(now))
                 if w is not None]
        return min(waits) if waits else None

    # -- the audio system between recordings -----------------------------------------------
    def _close_recorder(self) -> None:
        self._mic.close_soon()

    def _audio_tick(self) -> None:
        self._mic.tick(recording=self._live.session is not None)

    # -- keep-alive ---------------------------------------------------------------------
    @property
    def _unloaded(self) -> bool:
        return self._link.unloaded

    def _can_unload(self) -> bool:
        ws = self._link.state
        return (self._keepalive.enabled and self._idle() and not self._stop.requested and not self._unloaded
                and ws.ready is not None and ws.switching_to is None and self._link.supervisor is not None)

    def _keep_alive_tick(self) -> None:
        now = self._clock()
        self._keepalive.note(now, self._can_unload())
        if self._keepalive.due(now):
            self._unload()
            self._keepalive.note(now, self._can_unload())  # unloaded: the count ends here

    def _unload(self) -> None:
        if not self._link.unload():  # a request still pending there: try again a full period later
            self._keepalive.restart(self._clock())
            return
        model = self._model_name()
        log.info("%s unloaded after %g idle minute(s)", model, self.cfg.keep_alive_minutes)
        self._publish(StatusEvent("idle", f"{model} unloaded after {self.cfg.keep_alive_minutes:g} idle minute(s) "
                                          "to free memory; it reloads at the next dictation", model=model))

    def _reload_worker(self) -> None:
        if self._link.reload():
            log.info("reloading %s", self._model_name())

    def _dispatch(self, event: Any) -> None:
        if isinstance(event, AudioIn):
            self._on_audio(event.audio)
        elif isinstance(event, SegmentDone):
            self._dictations.segment_done(self._live.session, event.session, event.index, event.future)
        elif isinstance(event, HotkeyPressed):
            self._on_hotkey(event.event, event.at)
        elif isinstance(event, Command):
            self._on_command(event)
        elif isinstance(event, WorkerProgress):
            self._on_progress(event.progress)
        elif isinstance(event, WorkerStateChanged):
            self._link.take(event.state)
        elif isinstance(event, WorkerIsReady):
            self._on_worker_ready(event)
        elif isinstance(event, WorkerTrouble):
            self._on_worker_trouble(event)
        elif isinstance(event, ModelSwitched):
            self._on_model_switched(event)
        elif isinstance(event, MicStalled):
            self._on_stall(event.reason)
        elif isinstance(event, SignalReceived):
            self._handle_signal(event.signum)

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
        try:
            pre = self._live.start(self.cfg, self._vad, self._model_name())
        except errors.CtrlspeakError as exc:
            self._publish_error(exc)
            return exc
        log.info("recording started (%s)", source)
        gave_up, model = self._link.state.gave_up, self._link.state.model
        retry = (gave_up is not None and gave_up.code in _RETRY_DOWNLOAD_ON
                 and model is not None and model.source == "hf")
        if retry:
            self._retry_download()
        waiting = f"trying to download {self._model_name()} again" if retry else self._waiting_for()
        listening = f"listening; {waiting}: the text comes once it is ready" if waiting else "listening"
        self._publish(StatusEvent("recording", listening, model=self._model_name()))
        self._reload_worker()  # after the recording started: its segments wait for the worker
        if pre.size:
            self._on_audio(pre)
        return None

    def stop_recording(self, reason: str = "", at: float | None = None) -> None:
        session = self._live.stop(reason, at)
        if session is None:
            return
        log.info("recording stopped after %.1f s in %d segment(s)", session.audio_s, session.count)
        waiting = self._waiting_for()
        what = reason or f"{session.audio_s:.1f} s of audio"
        self._publish(StatusEvent("transcribing", f"{what}; kept, waiting: {waiting}" if waiting else what,
                                  model=self._model_name()))
        if waiting and self._downloading():
            self._publish(StatusEvent("notice", f"your {session.audio_s:.0f} s recording is kept and is transcribed "
                                                f"as soon as the model is ready: {waiting}", model=self._model_name()))
        self._dictations.maybe_finish(session)

    def cancel_recording(self) -> None:
        if not self._live.cancel():
            return
        log.info("recording cancelled")
        self._publish(StatusEvent("idle", "cancelled"))
        self._settle()

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

    def _options(self) -> TranscribeOptions:
        return TranscribeOptions(self.cfg.language, self.cfg.target_language, self.cfg.punctuation)

    def _submit(self, audio: np.ndarray) -> Future:
        return self._link.submit(audio, self._options())

    def _settle(self) -> None:
        """Back to "ready" on the status channel once a dictation is over (bars follow the last event)."""
        if self._state() == "ready":
            self._publish(StatusEvent("ready", "", model=self._model_name(), quiet=True))

    # -- the worker ---------------------------------------------------------------------
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

    def _model_name(self) -> str:
        return self._link.model_name

    # -- what is said about the model (ModelView decides, the loop publishes) ---------------
    def _busy(self) -> Busy:
        return Busy(recording=self._live.session is not None, finishing=bool(self._dictations.finishing),
                    state=self._state())

    def _say(self, items: list[Say]) -> None:
        for item in items:
            if item == REFRESH:
                self._refresh_snapshot(self.status.last or StatusEvent(self._state()))
            elif isinstance(item, errors.CtrlspeakError):
                self._publish_error(item)
            else:
                self._publish(item)

    def _on_progress(self, p: Progress) -> None:
        self._say(self._link.view.progress(p, self._link.state, self._busy(), self._clock()))

    def _waiting_for(self) -> str:
        """What a recording made now waits for ("" when the model is ready to transcribe it)."""
        return self._link.waiting_for()

    def _downloading(self) -> bool:
        return self._link.downloading()

    def _retry_download(self) -> None:
        """A dictation after the download gave up tries it again (it continues where it stopped)."""
        log.info("dictation while %s is not downloaded: trying the download again", self._model_name())
        self._link.retry()  # ready arrives as usual

    def _on_worker_ready(self, event: WorkerIsReady) -> None:
        from ctrlspeak import sdnotify

        sdnotify.ready()
        message, said = self._link.view.ready(event.ready, self._link.state, self._busy())
        if self._link.state.booted_by == "reload":
            log.info("reloaded %s", message)
        self._say(said)

    def _on_worker_trouble(self, event: WorkerTrouble) -> None:
        self._say(self._link.view.trouble(event.error, event.final, self._link.state, self._busy()))

    def switch_model(self, name: str) -> dict[str, Any]:
        ref = registry.resolve(name)
        self._publish(StatusEvent("loading", f"switching to {ref.name}", percent=0.0, model=ref.name))
        future = self._link.switch(ref)
        future.add_done_callback(lambda f: self._inbox.put(ModelSwitched(ref, f)))
        return {"switching": ref.name}

    def _on_model_switched(self, event: ModelSwitched) -> None:
        self._say(self._link.view.switched(event.future, self._link.state))

    # -- control socket and hotkey ------------------------------------------------------
    def _handle_request(self, request: dict[str, Any]) -> dict[str, Any]:
        """Called on the control server's thread (see commands.handle_request)."""
        return commands.handle_request(self, self._control, request)

    def _post_command(self, request: dict[str, Any]) -> None:
        self._inbox.put(Command(request, Future()))

    def _on_command(self, event: Command) -> None:
        commands.answer(self, event)

    def _on_hotkey(self, event: Any, at: float | None = None) -> None:
        commands.on_hotkey(self, event, at)

    def post(self, event: Any) -> None:
        """Hand an event (:mod:`ctrlspeak.daemon.events`) to the loop; safe from any thread."""
        self._inbox.put(event)

    @property
    def recording(self) -> bool:
        """A recording is being made (the microphone is live)."""
        return self._live.session is not None

    def snapshot(self) -> dict[str, Any]:
        """What ``ctrlspeak status`` says: the state, the model, the worker, the last event."""
        return dict(self._snapshot)

    def preroll(self) -> None:
        """Open the microphone ahead of a recording (the hotkey is armed): nothing is cut off."""
        self._mic.preroll()

    def close_microphone(self) -> None:
        """Close it again (the tap sequence broke off); PortAudio follows AUDIO_RELEASE_S later."""
        self._close_recorder()

    # -- signals ------------------------------------------------------------------------
    # As uvicorn's Server.handle_exit: a signal only posts SignalReceived to the inbox, and the loop acts
    # on it. The first stop lets the dictations in flight finish within STOP_GRACE_S; a second
    # one forces the exit (the worker killed, FORCED_EXIT_STATUS).
    def request_stop(self) -> None:
        """Stop as SIGTERM does (the transcription in flight is finished, within STOP_GRACE_S,
        then run() returns). Safe from any thread: for a daemon run on a thread of its own."""
        self._inbox.put(SignalReceived(int(signal.SIGTERM)))

    @property
    def exit_status(self) -> int:
        """0, or FORCED_EXIT_STATUS after a forced stop: what ``run()`` returns."""
        return self._stop.exit_status

    def _on_signal(self, sig: signal.Signals) -> None:
        """Runs on the signal relay's thread: post, and after a second stop signal stand by."""
        self._inbox.put(SignalReceived(int(sig)))
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

    def _stop_overdue(self) -> bool:
        """The stop's grace is over: say what is left and where it is kept."""
        if not self._stop.overdue():
            return False
        left = list(self._dictations.finishing.values())
        kept = sum(1 for session in left if session.in_journal)
        log.warning("stopping after %.0f s with %d dictation(s) not transcribed: %d kept in the journal "
                    "(transcribed at the next start)%s", STOP_GRACE_S, len(left), kept,
                    "" if kept == len(left) else f", {len(left) - kept} lost (the journal is off or failed)")
        return True

    def reload_config(self) -> None:
        try:
            new = config_mod.load(self._flags)
        except errors.CtrlspeakError as exc:
            self._publish_error(errors.ConfigError(f"config not reloaded, keeping the old one: {exc.message}"))
            return
        old, self.cfg = self.cfg, new
        if new.keep_alive_minutes != old.keep_alive_minutes:
            self._keepalive = KeepAlive(new.keep_alive_minutes)
        self._setup_output()
        self._notifier_level(new.notify)
        log.info("config reloaded")
        if new.model != old.model:
            try:
                self.switch_model(new.model)
            except errors.CtrlspeakError as exc:
                self._publish_error(exc)
        self._publish(StatusEvent("notice", "config reloaded"))

    def _notifier_level(self, level: str) -> None:
        sink = getattr(self._notifier, "_sink", None)
        if sink is not None:
            sink.level = level

    # -- status -------------------------------------------------------------------------
    def _state(self) -> str:
        if self._live.session is not None:
            return "recording"
        if self._dictations.finishing:
            return "transcribing"
        if self._unloaded:
            return "idle"
        if self._link.state.ready is not None:
            return "ready"
        return "error" if self._link.state.gave_up is not None else "loading"

    def _publish(self, event: StatusEvent) -> None:
        # only the loop publishes (progress too arrives through the inbox), so no lock: a late
        # "loading 100%" is handled before or after "ready", never in between
        self._refresh_snapshot(event)
        self.status.publish(event)

    def _refresh_snapshot(self, event: StatusEvent) -> None:
        worker = self._link.snapshot()
        self._snapshot = {"state": self._state(), "model": worker.pop("model"),
                          "worker_ready": worker.pop("worker_ready"), "unloaded": worker.pop("unloaded"),
                          "pid": os.getpid(), "worker_pid": worker.pop("worker_pid"), "last": event.to_json(),
                          **worker}

    def _publish_error(self, exc: errors.CtrlspeakError) -> None:
        # the console line shows it already: the log file gets it, stderr not a second time
        log.error("%s", exc.one_line(), extra={"on_console": self._want_console})
        self._publish(StatusEvent("error", exc.message, code=exc.code, hint=exc.hint, model=self._model_name()))

    def _sound(self, which: str) -> None:
        if self.cfg.sounds:
            from ctrlspeak.audio.sounds import play

            play(which)
