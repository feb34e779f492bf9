"""Fixtures for end-to-end tests on the virtual desktop (see harness.py for the stack).

`desktop` is one stack per test module, reset before each test (notifications since the test began,
empty clipboard, silent microphone). `paste_target` is a fresh, focused Tk text window per test.
"""
from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.desktop.daemon_proc import MODEL, RunningDaemon
from tests.desktop.harness import STACK_TOOLS, Desktop, PasteTarget, require


@pytest.fixture(scope="module")
def desktop_stack() -> Iterator[Desktop]:
    require(STACK_TOOLS)
    with Desktop() as stack:
        yield stack


@pytest.fixture
def desktop(desktop_stack: Desktop) -> Desktop:
    desktop_stack.reset()
    return desktop_stack


@pytest.fixture
def paste_target(desktop: Desktop) -> Iterator[PasteTarget]:
    require((), modules=("tkinter",))
    with PasteTarget(desktop) as target:
        target.focus()
        yield target


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
                    "CTRLSPEAK_SOUNDS": "false", "CTRLSPEAK_LOG_LEVEL": "INFO", "PYTHONUNBUFFERED": "1",
                    # the model's words as they are: these tests compare them with what was said;
                    # test_text_e2e.py takes these out and checks the defaults' capitals and period
                    "CTRLSPEAK_AUTO_CAPITALIZE": "off", "CTRLSPEAK_TRAILING_PERIOD": "off"})
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

