"""Microphone capture: a sounddevice input stream at the device's own rate, converted
to 16 kHz mono float32.

The PortAudio callback only copies the block into a queue; a converter thread resamples
it and hands it on. The stream can be opened early (on the first tap of the hotkey) so a
short pre-roll ring holds the audio from just before recording starts: the first
syllable spoken right after the third tap is not lost.

Streams are closed with ``abort()``: ``stop()`` waits for the device to drain and hangs
forever when a PulseAudio source stops delivering.
"""
from __future__ import annotations

import collections
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ctrlspeak import errors
from ctrlspeak.ipc import SAMPLE_RATE

log = logging.getLogger(__name__)

#: no audio for this long while recording means the device is gone
STALL_S = 1.5


@dataclass(frozen=True)
class InputDevice:
    index: int
    name: str
    channels: int
    default_rate: float
    hostapi: str
    is_default: bool


def portaudio() -> Any:
    """The sounddevice module with PortAudio running (started again after :func:`release_portaudio`)."""
    import sounddevice as sd

    if not sd._initialized:  # noqa: SLF001 - sounddevice's documented way to re-scan devices
        sd._initialize()
    return sd


def release_portaudio() -> bool:
    """Shut PortAudio down while no stream is open (an idle daemon, between recordings).

    Its ALSA device scan holds about 11 MB (plugin libraries and ALSA's config tree) that an
    idle daemon does not need; starting again costs about 25 ms at the next first tap, and
    it re-scans the devices, so a microphone plugged in meanwhile is found. The caller must
    have closed its streams; the last start/stop sound's stream is closed here."""
    import sys

    sd = sys.modules.get("sounddevice")
    if sd is None or not sd._initialized:
        return False
    try:
        sd.stop()  # the stream of the last sd.play() (a finished blip), errors ignored
        while sd._initialized:
            sd._terminate()
    except Exception as exc:  # PortAudio errors are plain Exceptions
        log.debug("could not shut PortAudio down: %s", exc)
        return False
    return True


def list_input_devices() -> list[InputDevice]:
    try:
        sd = portaudio()
        devices = sd.query_devices()
        default_in = sd.default.device[0]
        hostapis = sd.query_hostapis()
    except Exception as exc:  # PortAudio errors are plain Exceptions
        raise errors.AudioDeviceError(f"cannot list audio devices: {exc}") from exc
    out = []
    for i, d in enumerate(devices):
        if d["max_input_channels"] > 0:
            out.append(InputDevice(i, d["name"], d["max_input_channels"], float(d["default_samplerate"]),
                                   hostapis[d["hostapi"]]["name"], i == default_in))
    return out


#: ALSA device names that stand for "the sound server's default input", whatever that is
_SERVER_DEFAULTS = ("default", "pulse", "pipewire", "sysdefault")


def describe_input(device: InputDevice) -> str:
    """The microphone as a person knows it. PortAudio's ALSA "default" (or "pulse") is the
    sound server's default source, so ask the server (PulseAudio or PipeWire, through pactl)
    which that is; messages then name it rather than saying "default"."""
    if device.name.lower() not in _SERVER_DEFAULTS:
        return device.name
    source = _default_source()
    return f"{source} (the default input)" if source else "the default input"


def _default_source() -> str | None:
    import json
    import shutil
    import subprocess

    pactl = shutil.which("pactl")
    if pactl is None:
        return None

    def run(*args: str) -> str | None:
        try:
            out = subprocess.run([pactl, *args], capture_output=True, text=True, timeout=1.0,
                                 stdin=subprocess.DEVNULL, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout if out.returncode == 0 else None

    name = (run("get-default-source") or "").strip()
    if not name:
        return None
    listing = run("--format=json", "list", "sources")
    try:
        for source in json.loads(listing or "[]"):
            if source.get("name") == name and source.get("description"):
                return str(source["description"])
    except (ValueError, AttributeError, TypeError):
        pass
    return name


def resolve_device(spec: str | int | None) -> InputDevice:
    """Pick the input device from a config value: None (default), an index, or a name
    (a case-insensitive substring)."""
    devices = list_input_devices()
    if not devices:
        raise errors.AudioDeviceError("no audio input device found")
    if spec is None or spec == "":
        for d in devices:
            if d.is_default:
                return d
        return devices[0]
    text = str(spec).strip()
    if text.isdigit():
        for d in devices:
            if d.index == int(text):
                return d
        raise errors.AudioDeviceError(f"no input device with index {text}")
    matches = [d for d in devices if text.lower() in d.name.lower()]
    if not matches:
        names = ", ".join(f"{d.index}: {d.name}" for d in devices)
        raise errors.AudioDeviceError(f"no input device matches {text!r} (have {names})")
    return matches[0]


class Recorder:
    """One input stream; ``on_audio`` receives 16 kHz mono float32 blocks while recording.

    ``on_audio`` and ``on_stall`` are called from the converter thread.
    """

    def __init__(self, device: str | int | None, on_audio: Callable[[np.ndarray], None],
                 on_stall: Callable[[str], None], preroll_s: float = 0.5, block_s: float = 0.02) -> None:
        self._device_spec = device
        self._on_audio = on_audio
        self._on_stall = on_stall
        self._preroll = collections.deque(maxlen=max(1, int(preroll_s / block_s)))
        self._block_s = block_s
        self._raw: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._stream: Any = None
        self._thread: threading.Thread | None = None
        self._recording = threading.Event()
        self._lock = threading.Lock()
        self._overflows = 0  # input overflows PortAudio reported since begin()
        self.device: InputDevice | None = None
        #: the device as messages name it (describe_input), found while the stream runs
        self.label = "the microphone"

    @property
    def is_open(self) -> bool:
        return self._stream is not None

    def open(self) -> None:
        """Open the stream (idempotent). Raises AudioDeviceError with a hint when it can't."""
        with self._lock:
            if self._stream is not None:
                return
            import soxr

            device = resolve_device(self._device_spec)
            sd = portaudio()
            rate = int(device.default_rate) or 48000
            channels = min(device.channels, 2)
            resampler = soxr.ResampleStream(rate, SAMPLE_RATE, 1, dtype="float32") if rate != SAMPLE_RATE else None
            raw = self._raw

            def callback(indata, frames, _time, status) -> None:
                raw.put(indata.copy())  # nothing else on PortAudio's thread but a counter
                if status.input_overflow:
                    self._overflows += 1

            try:
                stream = sd.InputStream(device=device.index, samplerate=rate, channels=channels, dtype="float32",
                                        blocksize=int(rate * self._block_s), callback=callback)
                stream.start()
            except Exception as exc:
                raise errors.AudioDeviceError(f"cannot open input device {describe_input(device)}: {exc}") from exc
            self.device, self._stream, self.label = device, stream, device.name
            # asking the sound server takes a few ms: not on the way to the first audio block
            threading.Thread(target=self._name_device, args=(device,), name="recorder-name", daemon=True).start()
            self._preroll.clear()
            self._thread = threading.Thread(target=self._convert, args=(stream, resampler), name="recorder", daemon=True)
            self._thread.start()
            log.info("microphone open: %s at %d Hz, %d channel(s)", device.name, rate, channels)

    def begin(self) -> np.ndarray:
        """Start delivering audio; returns the pre-roll captured so far."""
        self.open()
        with self._lock:
            pre = np.concatenate(list(self._preroll)) if self._preroll else np.zeros(0, np.float32)
            self._preroll.clear()
            self._overflows = 0
            self._recording.set()
        return pre

    @property
    def overflows(self) -> int:
        """Input overflows since :meth:`begin`: each one is audio the system was too busy to read."""
        return self._overflows

    def end(self) -> None:
        """Stop delivering audio (the stream stays open until :meth:`close`)."""
        self._recording.clear()

    @property
    def recording(self) -> bool:
        return self._recording.is_set()

    def close(self) -> None:
        with self._lock:
            stream, self._stream = self._stream, None
            self._recording.clear()
        if stream is None:
            return
        try:
            stream.abort()  # never stop(): it can hang on a source that stopped delivering
            stream.close()
        except Exception as exc:
            log.debug("closing the input stream: %s", exc)
        self._raw.put(None)
        if self._thread is not None:
            self._thread.join(2.0)

    def _name_device(self, device: InputDevice) -> None:
        label = describe_input(device)
        if self.device is device:
            self.label = label

    def _convert(self, stream: Any, resampler: Any) -> None:
        last_audio = time.monotonic()
        while True:
            try:
                block = self._raw.get(timeout=STALL_S if self._recording.is_set() else None)
            except queue.Empty:
                if self._stream is stream and self._recording.is_set():
                    self._on_stall(f"no audio from {self.label} for {time.monotonic() - last_audio:.1f} s")
                    last_audio = time.monotonic()
                continue
            if block is None:
                return
            last_audio = time.monotonic()
            mono = block.mean(axis=1, dtype=np.float32) if block.ndim == 2 else block
            audio = resampler.resample_chunk(mono) if resampler is not None else mono
            if audio.size == 0:
                continue
            if self._recording.is_set():
                self._on_audio(audio)
            else:
                with self._lock:
                    self._preroll.append(audio)


class FileSource:
    """A recording played as if it were spoken into the microphone (benchmarks, tests).

    It has :class:`Recorder`'s interface (open/begin/end/close, ``on_audio``, ``on_stall``),
    so the daemon takes it in the microphone's place. From :meth:`begin` a thread delivers
    the clip in blocks of ``block_s`` at real-time pacing: block k once its audio "has been
    spoken", at start + (k+1) * block_s, as a sound card does. After the clip it delivers
    silence until :meth:`end`, as a microphone does after the person stops speaking, and
    ``finished`` is set. Every block has the same size (the clip's last one is padded with
    silence). No block is delivered once :meth:`end` has returned. A file never stalls:
    ``on_stall`` is never called. There is no pre-roll (nothing was heard before the start).

    ``clock`` and ``sleep`` exist for tests; by default the thread waits on an event, so
    :meth:`end` wakes it at once instead of after up to one block.
    """

    overflows = 0  # a file is never read too late

    def __init__(self, on_audio: Callable[[np.ndarray], None], on_stall: Callable[[str], None],
                 clip: Any = None, *, preroll_s: float = 0.0, block_s: float = 0.02,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] | None = None) -> None:
        del preroll_s  # accepted so the daemon can build either source the same way
        self._on_audio = on_audio
        self._on_stall = on_stall
        self._block = max(1, round(block_s * SAMPLE_RATE))
        self._clock = clock
        self._sleep = sleep
        self._clip = np.zeros(0, np.float32)
        self._lock = threading.RLock()  # RLock: on_audio may call end() on the playing thread
        self._halt = threading.Event()
        self._halt.set()
        self._thread: threading.Thread | None = None
        #: set once the whole clip has been delivered (cleared by begin)
        self.finished = threading.Event()
        if clip is not None:
            self.load(clip)

    @property
    def block_s(self) -> float:
        return self._block / SAMPLE_RATE

    @property
    def duration_s(self) -> float:
        return self._clip.size / SAMPLE_RATE

    def load(self, clip: Any, rate: int = SAMPLE_RATE) -> None:
        """Play ``clip`` at every following :meth:`begin`: a path to an audio file, or an
        array of samples at ``rate`` ((frames,) or (frames, channels))."""
        from ctrlspeak.audio import files as audio

        if isinstance(clip, np.ndarray):
            self._clip = audio.to_mono_16k(clip, rate)
        else:
            self._clip = audio.load_file(clip)

    @property
    def is_open(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def recording(self) -> bool:
        return not self._halt.is_set()

    def open(self) -> None:
        """Nothing to open: a file is always there."""

    def begin(self) -> np.ndarray:
        """Start playing the clip from its beginning; returns the (empty) pre-roll."""
        self.close()
        with self._lock:
            self.finished.clear()
            halt = self._halt = threading.Event()
            self._thread = threading.Thread(target=self._play, args=(self._clip, halt), name="file-source",
                                            daemon=True)
            self._thread.start()
        return np.zeros(0, np.float32)

    def end(self) -> None:
        with self._lock:
            self._halt.set()

    def close(self) -> None:
        self.end()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(2.0)

    def _wait(self, seconds: float, halt: threading.Event) -> bool:
        """Wait ``seconds``; True if told to stop meanwhile."""
        if self._sleep is None:
            return halt.wait(seconds) if seconds > 0 else halt.is_set()
        if seconds > 0 and not halt.is_set():
            self._sleep(seconds)
        return halt.is_set()

    def _play(self, clip: np.ndarray, halt: threading.Event) -> None:
        step = self._block
        # pad to whole blocks so every block has the same size, as a sound card's do
        padded = np.zeros(-(-clip.size // step) * step, np.float32)
        padded[:clip.size] = clip
        silence = np.zeros(step, np.float32)
        blocks = padded.size // step
        if blocks == 0:
            self.finished.set()
        start = self._clock()
        k = 0
        while not self._wait(start + (k + 1) * step / SAMPLE_RATE - self._clock(), halt):
            block = padded[k * step:(k + 1) * step] if k < blocks else silence
            with self._lock:
                if halt.is_set():
                    return
                self._on_audio(block.copy())
            k += 1
            if k == blocks:
                self.finished.set()
