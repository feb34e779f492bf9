"""End to end on the virtual desktop, with real parts only: Xvfb, PulseAudio with a virtual
microphone fed with espeak-ng speech, a D-Bus session with a notification server, a Tk window
to paste into, and the real `ctrlspeak run` daemon with its real spawned worker and the
bundled tiny-en model.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.desktop.harness import Desktop, PasteTarget, speak, wait_until

pytestmark = pytest.mark.desktop

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("CTRLSPEAK_ARTIFACTS", REPO / "artifacts"))
MODEL = os.environ.get("CTRLSPEAK_E2E_MODEL", "tiny-en")
#: spoken by espeak-ng, and expected word for word (a held-out sentence for tiny-en)
SENTENCE = "please send the report to my team before the meeting tomorrow"


@dataclass
class RunningDaemon:
    proc: subprocess.Popen
    env: dict[str, str]
    log: Path

    def ctl(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "ctrlspeak", *args], env=self.env, capture_output=True,
                              text=True, timeout=timeout, stdin=subprocess.DEVNULL)

    def status(self) -> dict:
        out = self.ctl("status", "--json")
        return json.loads(out.stdout) if out.returncode == 0 else {}

    def wait_ready(self, timeout: float = 240) -> dict:
        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"daemon exited {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
            s = self.status()
            return s if s.get("worker_ready") else None
        return wait_until(ready, timeout, "the daemon's worker to be ready", interval=0.5)

    def wait_state(self, state: str, timeout: float = 30) -> dict:
        return wait_until(lambda: (s := self.status()).get("state") == state and s, timeout, f"state {state}",
                          interval=0.1)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def start_daemon(desktop: Desktop, tmp_path: Path) -> Iterator:
    started: list[RunningDaemon] = []

    def start(*extra: str, env_overrides: dict[str, str | None] | None = None) -> RunningDaemon:
        env = dict(desktop.env)
        for var, sub in (("HOME", "home"), ("XDG_CONFIG_HOME", "config"), ("XDG_DATA_HOME", "data"),
                         ("XDG_STATE_HOME", "state"), ("XDG_CACHE_HOME", "cache")):
            (tmp_path / sub).mkdir(exist_ok=True)
            env[var] = str(tmp_path / sub)
        runtime = tmp_path / "run"
        env.update({"CTRLSPEAK_RUNTIME_DIR": str(runtime), "HF_HUB_OFFLINE": "1", "CTRLSPEAK_TRAY": "false",
                    "CTRLSPEAK_SOUNDS": "false", "CTRLSPEAK_LOG_LEVEL": "INFO", "PYTHONUNBUFFERED": "1"})
        for key, value in (env_overrides or {}).items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        log = tmp_path / f"daemon-{len(started)}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen([sys.executable, "-m", "ctrlspeak", "run", "--model", MODEL, *extra],
                                    env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True)
        daemon = RunningDaemon(proc, env, log)
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        if daemon.proc.poll() is None:
            daemon.proc.send_signal(signal.SIGTERM)
            try:
                daemon.proc.wait(30)
            except subprocess.TimeoutExpired:
                daemon.proc.kill()
                daemon.proc.wait()


def _dictate(desktop: Desktop, daemon: RunningDaemon, begin, end) -> None:
    speech = speak(SENTENCE)
    begin()
    daemon.wait_state("recording", timeout=15)
    desktop.mic.play(speech, lead_s=0.3, tail_s=0.8)
    assert desktop.mic.wait_played(timeout=60)
    end()


def test_triple_ctrl_dictation_lands_in_the_window(desktop: Desktop, paste_target: PasteTarget, start_daemon):
    daemon = start_daemon()
    daemon.wait_ready()
    desktop.clipboard_set("the user's own clipboard")
    paste_target.focus()
    triple = ("key", "--delay", "80", "ctrl", "ctrl", "ctrl")
    _dictate(desktop, daemon, lambda: desktop.xdotool(*triple), lambda: desktop.xdotool(*triple))
    text = paste_target.wait_for_text(lambda t: t.strip() != "", timeout=60)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    desktop.screenshot(ARTIFACTS / "e2e-after-paste.png")
    assert text.strip() == SENTENCE
    wait_until(lambda: desktop.clipboard_get() == "the user's own clipboard", 10, "the clipboard to be restored")
    note = desktop.wait_for_notification(lambda n: "pasted" in n.body, timeout=20)
    assert note.app_name == "ctrlspeak"
    history = daemon.ctl("history", "--json")
    entries = json.loads(history.stdout)["entries"]
    assert entries and entries[0]["text"] == SENTENCE
    assert SENTENCE not in daemon.log_text(), "transcripts must not be logged above DEBUG"


def test_toggle_over_the_socket_and_status_follow(desktop: Desktop, paste_target: PasteTarget, start_daemon,
                                                   tmp_path: Path):
    daemon = start_daemon()
    daemon.wait_ready()
    paste_target.focus()
    events_file = tmp_path / "follow.jsonl"
    with open(events_file, "wb") as out:
        follower = subprocess.Popen([sys.executable, "-m", "ctrlspeak", "status", "--follow"], env=daemon.env,
                                    stdout=out, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        wait_until(lambda: events_file.read_text().strip(), 20, "the follower's first event")
        _dictate(desktop, daemon, lambda: daemon.ctl("toggle"), lambda: daemon.ctl("toggle"))
        text = paste_target.wait_for_text(lambda t: t.strip() != "", timeout=60)
        assert text.strip() == SENTENCE
        wait_until(lambda: '"done"' in events_file.read_text(), 20, "a done event on status --follow")
    finally:
        follower.terminate()
        follower.wait(10)
    states = [json.loads(line)["state"] for line in events_file.read_text().splitlines() if line.strip()]
    assert states[0] == "ready"
    tail = states[states.index("recording"):]
    assert tail[:3] == ["recording", "transcribing", "done"], states


def test_without_a_display_the_daemon_runs_and_says_how_to_bind_toggle(desktop: Desktop, start_daemon):
    daemon = start_daemon("--output", "stdout", env_overrides={"DISPLAY": None})
    daemon.wait_ready()
    _dictate(desktop, daemon, lambda: daemon.ctl("start"), lambda: daemon.ctl("stop"))
    wait_until(lambda: SENTENCE in daemon.log_text(), 60, "the transcript on the daemon's stdout")
    log = daemon.log_text()
    assert log.count("global keys unavailable") == 1
    assert "ctrlspeak toggle" in log
