"""``ctrlspeak bench``: how fast ctrlspeak is with your model on your machine.

It runs the real daemon in this process, on a thread of its own, with a
:class:`~ctrlspeak.audio.capture.FileSource` in the microphone's place playing dictations at
real-time pacing, started and stopped over its control socket as ``ctrlspeak start`` and
``stop`` do, and measures:

* load time: the daemon spawning its worker to the worker being ready;
* warm RTFx: audio seconds per second of round trip through the daemon's worker
  :class:`~ctrlspeak.supervision.supervisor.Supervisor`, on 5 s and 30 s clips (each sent once untimed);
* stop to text: the daemon's own ``latency_s`` (the stop command to the text at the cursor, not
  counting the clipboard restore after it: what a person waits for) for a
  ~3 s and a ~30 s dictation, interleaved;
* overhead: stop to text minus the worker's compute it waited for (the done event's
  ``compute_s``, normally the last segment's): queues, IPC, segmentation, joining, output;
* memory: the RSS of the worker and of this process (the daemon).

Dictations are the bundled espeak-ng sentence (``ctrlspeak/models/data/sample-en.wav``, or ``--audio`` files)
one after another with 0.6-1.0 s pauses, a short lead-in and a short pause before the stop.
Nothing touches the person's data or a running daemon: no history, journal, sounds,
notifications, tray or hotkey, and the control socket lives in a temporary directory.
The results and the table printed from them are :mod:`ctrlspeak.commands.bench_report`.
"""
from __future__ import annotations

import argparse
import io
import os
import queue
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctrlspeak import config, errors
from ctrlspeak.commands.bench_report import BenchResult, Dictation, table

if TYPE_CHECKING:  # numpy loads when the command runs: `ctrlspeak --help` stays instant
    import numpy as np

#: a person starts speaking a moment after the start tap...
LEAD_S = 0.3
#: ...and taps stop a moment after the last word: before a pause long enough to cut at
#: (min_silence_s, 0.5 s by default), so the last segment is always transcribed after the
#: stop - the case stop-to-text is about (a segment cut earlier is often done by then)
TRAIL_S = 0.25
#: pauses between sentences: long enough for the daemon to cut there
PAUSE_S = (0.6, 1.0)
#: a faint noise floor (about -70 dBFS): a microphone never delivers digital silence
NOISE_RMS = 3e-4


def add_parser(sub: Any) -> None:
    p = sub.add_parser("bench", help="measure load time, speed, stop-to-text latency and memory with your model")
    p.add_argument("--model", "-m", help="the model to measure (default: the configured one)")
    p.add_argument("--runs", type=int, default=3, metavar="N", help="dictations of each length (default: 3)")
    p.add_argument("--quick", action="store_true", help="one run each, a 12 s long dictation (under a minute)")
    p.add_argument("--audio", action="append", metavar="FILE",
                   help="speech to build the dictations from (default: the bundled sample sentence)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress on stderr, only the table on stdout")
    p.set_defaults(func=run)


# -- audio ----------------------------------------------------------------------------------
def load_sentences(paths: Sequence[str | os.PathLike[str]] | None = None) -> list[np.ndarray]:
    from ctrlspeak.audio import files as audio

    from ctrlspeak.models.registry import BUNDLED_SAMPLE

    files = [Path(p) for p in paths] if paths else [BUNDLED_SAMPLE]
    if not files[0].is_file() and not paths:
        raise errors.AudioFileError(f"the bundled sample {BUNDLED_SAMPLE} is missing (a broken install?)",
                                    hint="give a speech recording with --audio FILE")
    return [trim_silence(audio.load_file(f)) for f in files]


def trim_silence(samples: np.ndarray, floor_db: float = -60.0) -> np.ndarray:
    """Without the quiet 20 ms frames at either end (the pauses are added explicitly)."""
    import numpy as np

    from ctrlspeak.audio.segment import FRAME, frame_energy

    loud = np.flatnonzero(20 * np.log10(frame_energy(samples) + 1e-12) > floor_db)
    if loud.size == 0:
        return samples
    return samples[loud[0] * FRAME:(loud[-1] + 1) * FRAME]


def dictation(sentences: Sequence[np.ndarray], seconds: float, seed: int = 0,
              trail_s: float = TRAIL_S) -> np.ndarray:
    """Sentences one after another (cycled) with natural pauses, about ``seconds`` long
    (lead-in and ``trail_s`` before the stop included): the sentence count that comes closest."""
    import numpy as np

    from ctrlspeak.ipc import SAMPLE_RATE

    rng = np.random.default_rng(seed)

    def pad(seconds: float) -> np.ndarray:
        return np.zeros(round(seconds * SAMPLE_RATE), np.float32)

    parts, total, i = [pad(LEAD_S)], LEAD_S + trail_s, 0
    while True:
        sentence = sentences[i % len(sentences)]
        parts.append(sentence)
        total += sentence.size / SAMPLE_RATE
        i += 1
        following = sentences[i % len(sentences)].size / SAMPLE_RATE + np.mean(PAUSE_S)
        if total + following / 2 >= seconds:
            break
        pause = float(rng.uniform(*PAUSE_S))
        parts.append(pad(pause))
        total += pause
    parts.append(pad(trail_s))
    out = np.concatenate(parts)
    return (out + rng.normal(0.0, NOISE_RMS, out.size)).astype(np.float32)


def clip(sentences: Sequence[np.ndarray], seconds: float) -> np.ndarray:
    """Exactly ``seconds`` of speech with pauses (for RTFx)."""
    import numpy as np

    from ctrlspeak.ipc import SAMPLE_RATE

    audio = dictation(sentences, seconds + 5.0)
    return np.ascontiguousarray(audio[:round(seconds * SAMPLE_RATE)])


# -- the real daemon ---------------------------------------------------------------------------
def bench_config(cfg: config.Config) -> config.Config:
    """The person's settings (model, device, threads, segmentation), minus every side effect."""
    return cfg.replace(output="stdout", history=False, journal=False, sounds=False, tray=False, notify="off")


class DaemonRig:
    """The real :class:`~ctrlspeak.daemon.core.Daemon` on a thread of this process, a
    :class:`~ctrlspeak.audio.capture.FileSource` for a microphone, text printed into a buffer.

    ``show`` gets the daemon's status events while the model loads (a progress view)."""

    def __init__(self, cfg: config.Config, show: Callable[[Any], None] | None = None) -> None:
        from ctrlspeak.daemon.core import Daemon

        self.cfg = bench_config(cfg)
        self._tmp = tempfile.TemporaryDirectory(prefix="ctrlspeak-bench-")
        runtime = Path(self._tmp.name)
        self.socket = runtime / "control.sock"
        self._show = show
        self._events: queue.Queue[Any] = queue.Queue()  # (monotonic time, StatusEvent); None: it stopped
        self._text = io.StringIO()
        self.source: Any = None
        self.daemon = Daemon(self.cfg, console=False, hotkey=False, tray=False,
                             audio_source=self._make_source, stdout=self._text, runtime_dir=runtime)
        self.daemon.status.add("bench", lambda event: self._events.put((time.monotonic(), event)))
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="bench-daemon", daemon=True)

    def _make_source(self, **kwargs: Any) -> Any:
        from ctrlspeak.audio.capture import FileSource

        self.source = FileSource(**kwargs)
        return self.source

    def _run(self) -> None:
        try:
            self.daemon.run()
        except BaseException as exc:  # handed to the waiting thread
            self._failure = exc
        finally:
            self._events.put(None)

    def _next(self, deadline: float) -> tuple[float, Any]:
        try:
            item = self._events.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise errors.CtrlspeakError("the daemon did not answer in time") from None
        if item is None:
            raise self._failure or errors.CtrlspeakError("the daemon stopped")
        return item

    def start(self, timeout: float = 1800.0) -> float:
        """Start the daemon; returns the seconds from its worker's spawn to the worker being
        ready (the first "loading" event is published just before the spawn)."""
        self._thread.start()
        deadline = time.monotonic() + timeout
        spawned: float | None = None
        while True:
            at, event = self._next(deadline)
            if self._show is not None:
                self._show(event)
            if event.state == "loading" and spawned is None:
                spawned = at
            elif event.state == "ready":
                return at - (spawned if spawned is not None else at)
            elif event.state == "error" and control_state(self.socket) == "error":
                raise errors.from_code(event.code or "ERR_WORKER_BOOT", event.message)

    def rtfx_times(self, clips: dict[float, np.ndarray], reps: int) -> dict[float, list[float]]:
        """Round trips through the daemon's worker supervisor, ``reps`` per clip after one
        untimed pass (the first pass at a new length is slower)."""
        from ctrlspeak.ipc import TranscribeOptions

        supervisor = self.daemon.supervisor
        assert supervisor is not None
        options = TranscribeOptions(self.cfg.language, self.cfg.target_language, self.cfg.punctuation)
        times: dict[float, list[float]] = {}
        for seconds, audio in clips.items():
            supervisor.submit(audio, options).result(timeout=600.0)
            times[seconds] = []
            for _ in range(reps):
                t0 = time.perf_counter()
                supervisor.submit(audio, options).result(timeout=600.0)
                times[seconds].append(time.perf_counter() - t0)
        return times

    def dictate(self, audio: np.ndarray) -> Dictation:
        from ctrlspeak import control
        from ctrlspeak.ipc import SAMPLE_RATE

        audio_s = audio.size / SAMPLE_RATE
        while not self._events.empty():
            self._events.get_nowait()
        self.source.load(audio)
        control.request("start", path=self.socket)
        if not self.source.finished.wait(audio_s + 30.0):
            raise errors.CtrlspeakError("the file source did not finish playing")
        control.request("stop", path=self.socket)
        deadline = time.monotonic() + 120.0 + 2 * audio_s
        while True:
            _, event = self._next(deadline)
            if event.state == "done":
                text = self._text.getvalue().strip()
                self._text.seek(0)
                self._text.truncate()
                return Dictation(audio_s, float(event.latency_s), float(event.compute_s or 0.0), text)
            if event.state == "error":
                raise errors.from_code(event.code or "ERR_INTERNAL", event.message)
            if event.state == "idle":
                raise errors.TranscribeError(f"the daemon heard nothing in a {audio_s:.1f} s dictation")

    def memory(self) -> tuple[int, int]:
        """RSS of (the daemon, i.e. this process; its worker)."""
        import psutil

        supervisor = self.daemon.supervisor
        worker = supervisor.pid if supervisor is not None else None
        rss = psutil.Process(worker).memory_info().rss if worker else 0
        return psutil.Process().memory_info().rss, rss

    def close(self) -> None:
        if self._thread.is_alive():
            self.daemon.request_stop()
            self._thread.join(30.0)
        self._tmp.cleanup()

    def __enter__(self) -> DaemonRig:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def control_state(socket: Path) -> str:
    from ctrlspeak import control

    try:
        return str(control.request("status", path=socket).get("state"))
    except errors.CtrlspeakError:
        return "unknown"


def dictate_interleaved(rig: DaemonRig, dictations: dict[float, np.ndarray], runs: int, *, warmup: bool = True,
                        say: Callable[[str], None] = lambda s: None) -> dict[float, list[Dictation]]:
    """``runs`` of each dictation, alternating lengths so drift hits both alike."""
    if warmup:
        say("warm-up dictation")
        rig.dictate(next(iter(dictations.values())))
    out: dict[float, list[Dictation]] = {s: [] for s in dictations}
    for r in range(runs):
        for seconds, audio in dictations.items():
            say(f"run {r + 1}/{runs}: {seconds:.1f} s dictation")
            out[seconds].append(rig.dictate(audio))
    return out


# -- the command ---------------------------------------------------------------------------------
def run_bench(cfg: config.Config, *, runs: int = 3, quick: bool = False, audio_files: Sequence[str] | None = None,
              say: Callable[[str], None] = lambda s: None,
              show: Callable[[Any], None] | None = None) -> BenchResult:
    """Everything ``ctrlspeak bench`` measures; ``quick``: one run each, a 12 s long dictation."""
    from ctrlspeak.commands.transcribe import check_available
    from ctrlspeak.ipc import SAMPLE_RATE
    from ctrlspeak.models import registry

    if runs < 1:
        raise errors.UsageError(f"--runs must be 1 or more, not {runs}")
    check_available(cfg, registry.resolve(cfg.model))
    sentences = load_sentences(audio_files)
    runs = 1 if quick else runs
    clips = {5.0: clip(sentences, 5.0), 30.0: clip(sentences, 30.0)}
    trail = min(TRAIL_S, cfg.min_silence_s / 2)
    spoken = [dictation(sentences, 3.0, trail_s=trail), dictation(sentences, 12.0 if quick else 30.0, 1, trail)]
    with DaemonRig(cfg, show=show) as rig:
        say(f"starting the daemon with {cfg.model}")
        load_s = rig.start()
        ready = rig.daemon.supervisor.ready if rig.daemon.supervisor else None
        result = BenchResult(ready.model if ready else cfg.model, ready.device if ready else "?",
                             ready.threads if ready else 0, load_s)
        say("timing the worker on 5 s and 30 s clips")
        result.rtfx_times = rig.rtfx_times(clips, 1 if quick else 3)
        result.dictations = dictate_interleaved(rig, {a.size / SAMPLE_RATE: a for a in spoken}, runs, say=say)
        result.daemon_rss, result.worker_rss = rig.memory()
    return result


def run(args: argparse.Namespace) -> int:
    from ctrlspeak.daemon.status import ConsoleLine

    cfg = config.load({"model": args.model})
    console = None if args.quiet else ConsoleLine(sys.stderr)

    def say(line: str) -> None:
        if not args.quiet:
            print(f"ctrlspeak bench: {line}", file=sys.stderr, flush=True)

    def show(event: Any) -> None:  # the daemon's own loading line
        assert console is not None
        console(event)
        if event.state == "ready" and sys.stderr.isatty():
            sys.stderr.write("\n")

    result = run_bench(cfg, runs=args.runs, quick=args.quick, audio_files=args.audio, say=say,
                       show=None if args.quiet else show)
    print(table(result))
    return 0
