"""Self-tests of the desktop harness: each part is exercised for real (X, D-Bus, PulseAudio, Tk)."""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.desktop.harness import STACK_TOOLS, Desktop, PasteTarget, require, speak

pytestmark = pytest.mark.desktop

# Runs in a subprocess with Desktop.env: PortAudio reads PULSE_SERVER/XDG_RUNTIME_DIR when it
# initialises, i.e. when sounddevice is imported, so the test process itself cannot switch servers.
RECORDER = r"""
import os, sys, time
assert os.environ["PULSE_SERVER"].startswith("unix:"), "run me with Desktop.env"
import numpy as np
import sounddevice as sd

out, ready, stop = sys.argv[1:4]
chunks, stamps = [], []

def callback(indata, frames, when, status):
    chunks.append(indata[:, 0].copy())
    stamps.append(time.monotonic())

# Leaving the block calls stream.stop(), which hangs if the virtual microphone stops delivering.
with sd.InputStream(samplerate=16000, channels=1, dtype="float32", callback=callback):
    while not chunks:
        time.sleep(0.01)
    open(ready, "w").close()
    while not os.path.exists(stop):
        time.sleep(0.01)
np.savez(out, audio=np.concatenate(chunks), stamps=np.array(stamps))
"""


class Recorder:
    """sounddevice recording from the default input, in a subprocess started with the desktop env."""

    def __init__(self, desktop: Desktop, folder: Path) -> None:
        self.out, self.ready, self.stop_file = folder / "rec.npz", folder / "ready", folder / "stop"
        self.proc = desktop.spawn([sys.executable, "-c", RECORDER, str(self.out), str(self.ready),
                                   str(self.stop_file)], name="recorder")
        deadline = time.monotonic() + 30
        while not self.ready.exists():
            assert self.proc.poll() is None, f"recorder exited {self.proc.returncode}"
            assert time.monotonic() < deadline, "recorder got no audio callback within 30 s"
            time.sleep(0.02)

    def finish(self) -> tuple[np.ndarray, np.ndarray]:
        self.stop_file.touch()
        assert self.proc.wait(30) == 0, "recorder failed (see its log in the desktop workdir)"
        data = np.load(self.out)
        return data["audio"], data["stamps"]


def best_normalized_xcorr(recorded: np.ndarray, reference: np.ndarray) -> float:
    """max over lags of <rec[lag:lag+n], ref> / (|rec[lag:lag+n]| |ref|)."""
    rec, ref = recorded.astype(np.float64), reference.astype(np.float64)
    n = len(ref)
    assert len(rec) >= n, f"recorded {len(rec)} samples, fewer than the {n} played"
    size = 1 << (len(rec) + n).bit_length()
    corr = np.fft.irfft(np.fft.rfft(rec, size) * np.conj(np.fft.rfft(ref, size)), size)[:len(rec) - n + 1]
    energy = np.concatenate([[0.0], np.cumsum(rec ** 2)])
    window = np.sqrt(np.maximum(energy[n:] - energy[:-n], 1e-12))
    return float(np.max(corr / (window * np.linalg.norm(ref))))


def test_recording_from_default_input_hears_the_virtual_mic(desktop: Desktop, tmp_path: Path) -> None:
    require(["espeak-ng"])
    speech = speak("the quick brown fox jumps over the lazy dog")
    recorder = Recorder(desktop, tmp_path)
    seconds = desktop.mic.play(speech)
    assert desktop.mic.wait_played(timeout=seconds + 30)
    audio, _ = recorder.finish()
    assert best_normalized_xcorr(audio, speech) > 0.9


def test_stop_feed_starves_the_stream_and_resume_feed_revives_it(desktop: Desktop, tmp_path: Path) -> None:
    recorder = Recorder(desktop, tmp_path)
    desktop.mic.stop_feed()
    stopped = time.monotonic()
    time.sleep(1.5)
    resumed = time.monotonic()
    desktop.mic.resume_feed()
    time.sleep(0.5)
    _, stamps = recorder.finish()
    # What was already buffered may still trickle in just after stop_feed(); then nothing.
    assert not np.any((stamps > stopped + 0.5) & (stamps < resumed)), "callbacks while the mic was dead"
    assert np.any(stamps > resumed), "no callbacks after resume_feed()"


def test_drain_empties_the_fifo_that_nobody_reads(desktop: Desktop) -> None:
    """With no recording client PulseAudio does not read the pipe source: speech fills the FIFO
    (~2 s) and waits there for the next recording. drain() (run by every test's reset) drops it."""
    import os

    desktop.mic.play(speak("call my mother tomorrow morning and send the report"), lead_s=0, tail_s=0)
    time.sleep(3.0)
    assert not desktop.mic.wait_played(timeout=0), "nobody reads: part of the speech is still queued"
    desktop.mic.drain()
    assert desktop.mic.wait_played(timeout=0)
    fd = os.open(desktop.mic.fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        left = len(os.read(fd, 1 << 16))
    except BlockingIOError:
        left = 0
    finally:
        os.close(fd)
    assert left <= 2 * 640, f"{left} bytes still in the FIFO (the writer adds a 640-byte block every 20 ms)"


def test_xdotool_type_lands_in_the_paste_target(desktop: Desktop, paste_target: PasteTarget) -> None:
    desktop.xdotool("type", "--delay", "40", "hello")
    assert paste_target.wait_for_text("hello") == "hello"


def test_clipboard_then_ctrl_v_pastes(desktop: Desktop, paste_target: PasteTarget) -> None:
    text = "pasted from the clipboard: déjà vu ✓"
    desktop.clipboard_set(text)
    assert desktop.clipboard_get() == text
    desktop.xdotool("key", "ctrl+v")
    assert paste_target.wait_for_text(text) == text
    paste_target.clear()
    assert paste_target.text() == ""


def test_notify_send_is_captured(desktop: Desktop) -> None:
    subprocess.run(["notify-send", "Hi", "there"], env=desktop.env, check=True, timeout=30)
    note = desktop.wait_for_notification(lambda n: n.summary == "Hi")
    assert (note.app_name, note.summary, note.body) == ("notify-send", "Hi", "there")
    assert note.hints["urgency"] == "byte 1"


def test_notification_texts_with_quotes_and_newlines_parse(desktop: Desktop) -> None:
    summary, body = 'He said "stop"', 'line one\n   string "not an argument"\nline three'
    subprocess.run(["notify-send", "-a", "ctrl speak", "-u", "critical", summary, body],
                   env=desktop.env, check=True, timeout=30)
    note = desktop.wait_for_notification()
    assert (note.app_name, note.summary, note.body) == ("ctrl speak", summary, body)
    assert note.hints["urgency"] == "byte 2"
    assert len(desktop.notifications()) == 1  # reset() hid the notifications of earlier tests


def test_screenshot_is_a_png(desktop: Desktop, paste_target: PasteTarget, tmp_path: Path) -> None:
    desktop.xdotool("type", "visible in the screenshot")
    paste_target.wait_for_text("screenshot")
    shot = desktop.screenshot(tmp_path / "desktop.png")
    data = shot.read_bytes()
    assert len(data) > 1000 and data.startswith(b"\x89PNG\r\n\x1a\n")


def _start_time(pid: int) -> str | None:
    """Field 22 of /proc/PID/stat: with the PID it names one process, even if the PID is reused."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def test_stack_stops_every_process_it_started() -> None:
    require([*STACK_TOOLS, "trayer"], modules=("tkinter",))
    with Desktop(start_tray=True) as stack:
        assert stack.startup_s < 30
        assert stack.tray_ready()
        stack.clipboard_set("owned by an xclip child")
        target = PasteTarget(stack)  # left open on purpose: the Desktop must stop it
        names = {name for name, _ in stack.started}
        assert {"Xvfb", "dbus-daemon", "dunst", "dbus-monitor", "pulseaudio", "trayer", "xclip",
                "paste-target"} <= names
        alive = {pid: _start_time(pid) for _, pid in stack.started if _start_time(pid) is not None}
        assert target.pid in alive
        workdir, display = stack.workdir, stack.display
    survivors = [pid for pid, started in alive.items() if _start_time(pid) == started]
    assert survivors == []
    assert not workdir.exists()
    assert not Path(f"/tmp/.X{display[1:]}-lock").exists()
