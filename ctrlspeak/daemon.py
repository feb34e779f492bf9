"""The dictation daemon (``ctrlspeak run``).

One main loop owns all state and handles one event at a time from a queue; every other
thread (hotkey listener, control socket, recorder, worker dispatcher, signal relay) only
posts events to it. So there are no locks around the daemon's state, and every change
happens in one place::

    hotkey thread ----\\
    control socket ----\\                          /--> recorder (mic open/begin/end)
    recorder thread ----+--> inbox --> main loop --+--> worker client (segments)
    worker dispatcher --/                          +--> output (clipboard + paste)
    signal relay -------/                          \\--> status bus --> sinks

A recording is a :class:`Session`. Its audio is cut at pauses (:class:`Segmenter`) and
each segment goes to the worker while the person is still speaking, so after the stop
tap only the last segment is left to transcribe. A tap while the model is still loading
records anyway: segments wait for the worker and are sent once it is ready.
"""
from __future__ import annotations

import logging
import os
import queue
import signal
import threading
import time
import uuid
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ctrlspeak import config as config_mod
from ctrlspeak import errors
from ctrlspeak.ipc import SAMPLE_RATE, ModelRef, Progress, TranscribeOptions, WorkerReady, WorkerSettings
from ctrlspeak.models import download, registry
from ctrlspeak.segment import Segmenter, join_texts
from ctrlspeak.status import StatusBus, StatusEvent
from ctrlspeak.worker_client import WorkerClient, describe_exit

log = logging.getLogger(__name__)

#: share of the loading bar per stage (download only happens for uncached models)
_STAGE_SPAN = {"download": (0.0, 40.0), "import": (40.0, 70.0), "restore": (70.0, 95.0), "warmup": (95.0, 100.0)}
#: a final segment quieter than this (about -50 dBFS) holds no speech: don't transcribe it
_SILENT_PEAK = 0.003


# -- events posted to the main loop ---------------------------------------------------
@dataclass(frozen=True)
class _Hotkey:
    event: Any


@dataclass(frozen=True)
class _Command:
    request: dict[str, Any]
    reply: Future


@dataclass(frozen=True)
class _Audio:
    audio: np.ndarray


@dataclass(frozen=True)
class _Stall:
    reason: str


@dataclass(frozen=True)
class _SegmentDone:
    session: str
    index: int
    future: Future


@dataclass(frozen=True)
class _WorkerProgress:
    progress: Progress


@dataclass(frozen=True)
class _WorkerReady:
    client: WorkerClient
    future: Future


@dataclass(frozen=True)
class _WorkerExit:
    client: WorkerClient
    exitcode: int | None


@dataclass(frozen=True)
class _ModelSwitched:
    ref: ModelRef
    future: Future


@dataclass(frozen=True)
class _Signal:
    signum: int


@dataclass
class Session:
    id: str
    started: float
    segmenter: Segmenter
    audio_s: float = 0.0
    segments: dict[int, np.ndarray] = field(default_factory=dict)  # kept until transcribed
    unsent: list[int] = field(default_factory=list)
    texts: dict[int, str] = field(default_factory=dict)
    failures: dict[int, errors.CtrlspeakError] = field(default_factory=dict)
    count: int = 0
    stopped_at: float | None = None
    reason: str = ""

    @property
    def complete(self) -> bool:
        return self.stopped_at is not None and len(self.texts) + len(self.failures) == self.count


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


class Daemon:
    def __init__(self, cfg: config_mod.Config, flags: dict[str, Any] | None = None, *,
                 console: bool = True, hotkey: bool = True, tray: bool | None = None) -> None:
        self.cfg = cfg
        self._flags = flags or {}
        self._inbox: queue.Queue[Any] = queue.Queue()
        self.status = StatusBus()
        self._want_console = console
        self._want_hotkey = hotkey
        self._want_tray = cfg.tray if tray is None else tray
        self._client: WorkerClient | None = None
        self._ready: WorkerReady | None = None
        self._model: ModelRef | None = None
        self._session: Session | None = None
        self._finishing: dict[str, Session] = {}
        self._stopping = False
        self._force = False
        self._closers: list[Any] = []
        self._snapshot: dict[str, Any] = {"state": "loading"}
        self._sigint_count = 0
        self._boot_error: errors.CtrlspeakError | None = None
        self.exit_status = 0
        # parts created in start()
        self._recorder: Any = None
        self._hotkey: Any = None
        self._output: Any = None
        self._history: Any = None
        self._control: Any = None
        self._vad: Any = None

    # -- set-up -------------------------------------------------------------------------
    def start(self) -> None:
        from ctrlspeak import control
        from ctrlspeak.recorder import Recorder
        from ctrlspeak.signals import SignalRelay
        from ctrlspeak.vad import make_vad

        self._setup_sinks()
        self._vad = make_vad()
        self._model, notice = choose_model(self.cfg)
        self._start_worker(self._model)  # first: loading takes longest
        if notice:
            self._publish(StatusEvent("notice", notice, model=self._model.name))
        self._control = control.ControlServer(control.socket_path(), self._handle_request)
        self._control.start()
        self._closers.append(self._control.close)
        self.status.add("socket", lambda e: self._control.publish({"event": "status", **e.to_json()}))
        self._recorder = Recorder(self.cfg.input_device, on_audio=lambda a: self._inbox.put(_Audio(a)),
                                  on_stall=lambda why: self._inbox.put(_Stall(why)), preroll_s=self.cfg.preroll_s)
        self._closers.append(self._recorder.close)
        self._setup_output()
        if self._want_hotkey:
            self._setup_hotkey()
        if self.cfg.history:
            from ctrlspeak.history import History

            self._history = History()
            self._closers.append(self._history.close)
        if threading.current_thread() is threading.main_thread():
            relay = SignalRelay((signal.SIGINT, signal.SIGTERM, signal.SIGHUP),
                                lambda sig: self._on_signal(sig))
            relay.install()
            self._closers.append(relay.restore)

    def _setup_sinks(self) -> None:
        from ctrlspeak import sdnotify
        from ctrlspeak.notify import Notifier
        from ctrlspeak.status import ConsoleLine, ThreadedSink

        if self._want_console:
            self.status.add("console", ConsoleLine())
        notifier = ThreadedSink("notify", Notifier(self.cfg.notify))
        self._notifier = notifier
        self.status.add("notify", notifier)
        self._closers.append(notifier.close)
        self.status.add("systemd", lambda e: sdnotify.notify(f"STATUS={e.state} {e.message}"[:200]))
        if self._want_tray:
            self._setup_tray()

    def _setup_tray(self) -> None:
        from ctrlspeak.status import ThreadedSink
        from ctrlspeak.tray import Tray

        try:
            tray = Tray(on_toggle=lambda: self._post_command({"cmd": "toggle"}),
                        on_model=lambda name: self._post_command({"cmd": "model", "name": name}),
                        on_quit=lambda: self._inbox.put(_Signal(signal.SIGTERM)),
                        models=registry.available_models())
            tray.start()
        except Exception as exc:  # no tray host, no X display: the rest works without it
            log.warning("tray icon unavailable: %s", exc)
            return
        self.status.add("tray", ThreadedSink("tray", tray))
        self._closers.append(tray.stop)

    def _setup_output(self) -> None:
        from ctrlspeak.output import NullKeyGuard, Output

        guard = self._hotkey if self._hotkey is not None else NullKeyGuard()
        self._output = Output(self.cfg.output, key_guard=guard, restore_clipboard=self.cfg.restore_clipboard)

    def _setup_hotkey(self) -> None:
        from ctrlspeak.hotkey import HotkeyConfig, TapDetector
        from ctrlspeak.keyboard import GlobalHotkey

        detector = TapDetector(HotkeyConfig(mode=self.cfg.hotkey_mode, key=self.cfg.hotkey_key,
                                            taps=self.cfg.hotkey_taps, window_s=self.cfg.hotkey_window_s))
        hotkey = GlobalHotkey(detector, lambda event: self._inbox.put(_Hotkey(event)))
        try:
            hotkey.start()
        except errors.HotkeyUnavailable as exc:
            # said once; the daemon runs on, driven by `ctrlspeak toggle` over the socket
            self._publish(StatusEvent("notice", f"global keys unavailable ({exc.message}); "
                                                "bind `ctrlspeak toggle` to a desktop shortcut instead"))
            return
        self._hotkey = hotkey
        self._closers.append(hotkey.stop)
        self._setup_output()  # now with the hotkey as the key guard

    def _start_worker(self, ref: ModelRef) -> None:
        settings = WorkerSettings(model=ref, compute_device=self.cfg.compute_device,
                                  threads=self.cfg.effective_threads, offline=download.is_offline(self.cfg.offline),
                                  hf_cache_dir=self.cfg.hf_cache_dir, log_level=self.cfg.log_level)
        client = WorkerClient(settings, on_progress=lambda p: self._inbox.put(_WorkerProgress(p)),
                              on_exit=lambda code: self._inbox.put(_WorkerExit(client, code)))
        self._client, self._ready = client, None
        self._publish(StatusEvent("loading", f"starting {ref.name}", percent=0.0, model=ref.name))
        client.start()
        client.ready.add_done_callback(lambda f: self._inbox.put(_WorkerReady(client, f)))

    # -- the loop -----------------------------------------------------------------------
    def run(self) -> int:
        self.start()
        try:
            while True:
                event = self._inbox.get()
                try:
                    self._dispatch(event)
                except Exception:
                    log.exception("error handling %s", type(event).__name__)
                if self._force or (self._stopping and self._idle()):
                    break
        finally:
            self.shutdown()
        return self.exit_status

    def _idle(self) -> bool:
        return self._session is None and not self._finishing

    def _dispatch(self, event: Any) -> None:
        if isinstance(event, _Audio):
            self._on_audio(event.audio)
        elif isinstance(event, _SegmentDone):
            self._on_segment_done(event)
        elif isinstance(event, _Hotkey):
            self._on_hotkey(event.event)
        elif isinstance(event, _Command):
            self._on_command(event)
        elif isinstance(event, _WorkerProgress):
            self._on_progress(event.progress)
        elif isinstance(event, _WorkerReady):
            self._on_worker_ready(event)
        elif isinstance(event, _WorkerExit):
            self._on_worker_exit(event)
        elif isinstance(event, _ModelSwitched):
            self._on_model_switched(event)
        elif isinstance(event, _Stall):
            self._on_stall(event.reason)
        elif isinstance(event, _Signal):
            self._handle_signal(event.signum)

    def shutdown(self) -> None:
        from ctrlspeak import sdnotify

        sdnotify.stopping()
        if self._client is not None:
            self._client.close(timeout=5.0)
        for close in reversed(self._closers):
            try:
                close()
            except Exception:
                log.exception("error while shutting down")
        self._closers.clear()

    # -- recording ----------------------------------------------------------------------
    def start_recording(self, source: str) -> None:
        if self._session is not None or self._stopping:
            return
        try:
            pre = self._recorder.begin()
        except errors.CtrlspeakError as exc:
            self._publish_error(exc)
            return
        self._session = Session(
            id=uuid.uuid4().hex[:8], started=time.monotonic(),
            segmenter=Segmenter(self._vad, min_silence_s=self.cfg.min_silence_s, max_segment_s=self.cfg.max_segment_s),
        )
        self._sound("start")
        log.info("recording started (%s)", source)
        self._publish(StatusEvent("recording", "listening", model=self._model_name()))
        if pre.size:
            self._on_audio(pre)

    def stop_recording(self, reason: str = "") -> None:
        session = self._session
        if session is None:
            return
        self._recorder.end()
        self._recorder.close()
        self._session = None
        session.stopped_at = time.monotonic()
        session.reason = reason
        self._sound("stop")
        rest = session.segmenter.flush()
        if rest is not None and (session.count == 0 or float(np.abs(rest).max()) > _SILENT_PEAK):
            self._add_segment(session, rest)
        self._finishing[session.id] = session
        log.info("recording stopped after %.1f s in %d segment(s)", session.audio_s, session.count)
        self._publish(StatusEvent("transcribing", reason or f"{session.audio_s:.1f} s of audio", model=self._model_name()))
        self._maybe_finish(session)

    def cancel_recording(self) -> None:
        session = self._session
        if session is None:
            return
        self._recorder.end()
        self._recorder.close()
        self._session = None
        log.info("recording cancelled")
        self._publish(StatusEvent("idle", "cancelled"))

    def toggle(self, source: str) -> None:
        if self._session is None:
            self.start_recording(source)
        else:
            self.stop_recording()

    def _on_audio(self, audio: np.ndarray) -> None:
        session = self._session
        if session is None:
            return
        session.audio_s += audio.size / SAMPLE_RATE
        for segment in session.segmenter.feed(audio):
            self._add_segment(session, segment)
        if session.audio_s >= self.cfg.max_record_s:
            self.stop_recording(f"maximum length of {self.cfg.max_record_s:.0f} s reached; the audio is kept")
            self._publish(StatusEvent("notice", f"recording stopped at the {self.cfg.max_record_s:.0f} s limit"))

    def _on_stall(self, reason: str) -> None:
        if self._session is None:
            return
        self.stop_recording(f"the microphone stopped: {reason}")
        self._publish_error(errors.AudioDeviceError(f"{reason}; the audio recorded so far is being transcribed"))

    def _add_segment(self, session: Session, audio: np.ndarray) -> None:
        index = session.count
        session.count += 1
        session.segments[index] = audio
        if self._ready is not None:
            self._submit(session, index)
        else:
            session.unsent.append(index)

    def _submit(self, session: Session, index: int) -> None:
        assert self._client is not None
        future = self._client.submit(session.segments[index], self._options())
        future.add_done_callback(lambda f: self._inbox.put(_SegmentDone(session.id, index, f)))

    def _options(self) -> TranscribeOptions:
        return TranscribeOptions(self.cfg.language, self.cfg.target_language, self.cfg.punctuation)

    def _on_segment_done(self, event: _SegmentDone) -> None:
        session = self._session if self._session and self._session.id == event.session else self._finishing.get(event.session)
        if session is None:
            return
        try:
            session.texts[event.index] = event.future.result().text
            session.segments.pop(event.index, None)
        except errors.CtrlspeakError as exc:
            session.failures[event.index] = exc
        self._maybe_finish(session)

    def _maybe_finish(self, session: Session) -> None:
        if not session.complete:
            return
        self._finishing.pop(session.id, None)
        text = join_texts([session.texts.get(i, "") for i in range(session.count)])
        latency = time.monotonic() - (session.stopped_at or time.monotonic())
        if session.failures:
            first = next(iter(session.failures.values()))
            self._publish_error(first)
        if not text:
            self._publish(StatusEvent("idle", "nothing was heard"))
            return
        self._deliver(text, session, latency)

    def _deliver(self, text: str, session: Session, latency: float) -> None:
        log.debug("transcript: %s", text)
        delivered_note = ""
        try:
            delivery = self._output.deliver(text)
            if not delivery.pasted and delivery.method != "stdout":
                self._publish(StatusEvent("error", delivery.detail, code="ERR_PASTE_FAILED",
                                          hint=errors.info_for("ERR_PASTE_FAILED").hint))
                delivered_note = "on the clipboard"
        except errors.CtrlspeakError as exc:
            # even the clipboard failed: the text is in history, and shown in the notification
            self._publish(StatusEvent("error", f"{exc.message}. Text: {text}", code=exc.code, hint=exc.hint))
            delivered_note = "kept in history"
        latency = time.monotonic() - (session.stopped_at or time.monotonic())
        if self._history is not None:
            self._history.add(text, model=self._model_name(), duration_s=session.audio_s, latency_s=latency)
        words = len(text.split())
        self._publish(StatusEvent("done", delivered_note, latency_s=latency, words=words, model=self._model_name()))

    # -- the worker ---------------------------------------------------------------------
    def _model_name(self) -> str:
        return self._model.name if self._model else ""

    def _on_progress(self, p: Progress) -> None:
        if p.stage == "transcribe" or self._ready is not None:
            return
        lo, hi = _STAGE_SPAN.get(p.stage, (0.0, 100.0))
        percent = lo + (hi - lo) * (p.fraction or 0.0)
        self._publish(StatusEvent("loading", p.message, percent=round(percent, 1), model=self._model_name()))

    def _on_worker_ready(self, event: _WorkerReady) -> None:
        if event.client is not self._client:
            return
        try:
            ready = event.future.result()
        except errors.CtrlspeakError as exc:
            # the daemon stays up: the person can switch model (`ctrlspeak model NAME`)
            self._boot_error = exc
            self._publish_error(exc)
            return
        self._ready, self._boot_error = ready, None
        from ctrlspeak import sdnotify

        sdnotify.notify("READY=1")
        self._publish(StatusEvent("ready", f"{ready.model} on {ready.device}, loaded in {ready.load_s + ready.import_s:.1f} s",
                                  model=ready.model))
        for session in [s for s in (self._session, *self._finishing.values()) if s is not None]:
            unsent, session.unsent = session.unsent, []
            for index in unsent:
                self._submit(session, index)

    def _on_worker_exit(self, event: _WorkerExit) -> None:
        if event.client is not self._client or self._stopping:
            return
        how = describe_exit(event.exitcode)
        self._ready = None
        if self._client.ready.done() and self._client.ready.exception() is None:
            self._publish_error(errors.WorkerCrashed(f"the transcription worker {how}"))
        # in-flight segments failed with ERR_WORKER_CRASHED through their futures

    def switch_model(self, name: str) -> dict[str, Any]:
        ref = registry.resolve(name)
        if self._client is None or self._ready is None:
            raise errors.ModelLoadError("the worker is not ready yet; try again when it is")
        future = self._client.load_model(ref)
        self._publish(StatusEvent("loading", f"switching to {ref.name}", percent=0.0, model=ref.name))
        future.add_done_callback(lambda f: self._inbox.put(_ModelSwitched(ref, f)))
        return {"switching": ref.name}

    def _on_model_switched(self, event: _ModelSwitched) -> None:
        try:
            ready = event.future.result()
        except errors.CtrlspeakError as exc:
            self._publish_error(exc)
            self._publish(StatusEvent("ready", f"still using {self._model_name()}", model=self._model_name()))
            return
        self._model, self._ready = event.ref, ready
        self._publish(StatusEvent("ready", f"switched to {ready.model}", model=ready.model))

    # -- control socket and hotkey ------------------------------------------------------
    def _handle_request(self, request: dict[str, Any]) -> dict[str, Any]:
        """Called on the control server's thread: hand over to the main loop and wait."""
        if request.get("cmd") == "status":
            return dict(self._snapshot)
        if request.get("cmd") == "follow":
            # a new follower first gets the current state, then every event as it happens
            last = self.status.last
            if last is not None:
                self._control.publish({"event": "status", **last.to_json()})
            return {}
        future: Future = Future()
        self._inbox.put(_Command(request, future))
        return future.result(timeout=10)

    def _post_command(self, request: dict[str, Any]) -> None:
        self._inbox.put(_Command(request, Future()))

    def _on_command(self, event: _Command) -> None:
        cmd = event.request.get("cmd")
        try:
            if cmd == "toggle":
                self.toggle("socket")
            elif cmd == "start":
                self.start_recording("socket")
            elif cmd == "stop":
                self.stop_recording()
            elif cmd == "cancel":
                self.cancel_recording()
            elif cmd == "model":
                event.reply.set_result(self.switch_model(str(event.request.get("name", ""))))
                return
            else:
                raise errors.UsageError(f"unknown command {cmd!r}")
            event.reply.set_result(dict(self._snapshot))
        except errors.CtrlspeakError as exc:
            event.reply.set_exception(exc)

    def _on_hotkey(self, event: Any) -> None:
        from ctrlspeak.hotkey import HotkeyEvent

        if event is HotkeyEvent.ARMED and self._session is None:
            try:
                self._recorder.open()  # pre-roll: the mic is running before the last tap
            except errors.CtrlspeakError as exc:
                log.debug("pre-roll unavailable: %s", exc.message)
        elif event is HotkeyEvent.DISARMED and self._session is None:
            self._recorder.close()
        elif event is HotkeyEvent.TRIGGER:
            self.toggle("hotkey")
        elif event is HotkeyEvent.HOLD_START:
            self.start_recording("hotkey")
        elif event is HotkeyEvent.HOLD_END:
            self.stop_recording()

    # -- signals ------------------------------------------------------------------------
    def _on_signal(self, sig: signal.Signals) -> None:
        # runs on the relay thread: a second SIGINT must work even if the loop is stuck
        if sig == signal.SIGINT:
            self._sigint_count += 1
            if self._sigint_count >= 2:
                log.warning("second interrupt: exiting now")
                if self._client is not None:
                    self._client.kill()
                os._exit(130)
        self._inbox.put(_Signal(int(sig)))

    def _handle_signal(self, signum: int) -> None:
        if signum == signal.SIGHUP:
            self.reload_config()
            return
        if not self._stopping:
            log.info("stopping (%s): finishing the transcription in flight", signal.Signals(signum).name)
            self._stopping = True
            self.exit_status = 0
            if self._session is not None:
                self.stop_recording("stopping")
            self._publish(StatusEvent("idle", "stopping"))

    def reload_config(self) -> None:
        try:
            new = config_mod.load(self._flags)
        except errors.CtrlspeakError as exc:
            self._publish_error(errors.ConfigError(f"config not reloaded, keeping the old one: {exc.message}"))
            return
        old, self.cfg = self.cfg, new
        self._setup_output()
        self._notifier_level(new.notify)
        log.info("config reloaded")
        if new.model != old.model and self._ready is not None:
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
        if self._session is not None:
            return "recording"
        if self._finishing:
            return "transcribing"
        if self._ready is not None:
            return "ready"
        return "error" if self._boot_error is not None else "loading"

    def _publish(self, event: StatusEvent) -> None:
        self._snapshot = {
            "state": self._state(),
            "model": self._model_name(),
            "worker_ready": self._ready is not None,
            "pid": os.getpid(),
            "last": event.to_json(),
        }
        if self._boot_error is not None and self._ready is None:
            self._snapshot["error"] = {"code": self._boot_error.code, "message": self._boot_error.message,
                                       "hint": self._boot_error.hint}
        self.status.publish(event)

    def _publish_error(self, exc: errors.CtrlspeakError) -> None:
        log.error("%s", exc.one_line())
        self._publish(StatusEvent("error", exc.message, code=exc.code, hint=exc.hint, model=self._model_name()))

    def _sound(self, which: str) -> None:
        if self.cfg.sounds:
            from ctrlspeak.sounds import play

            play(which)
