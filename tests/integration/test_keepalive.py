"""Unload and reload with the real spawned worker and the bundled tiny-en model: the
unloaded worker process is really gone, and audio submitted while unloaded is held,
transcribed by the reloaded worker, word for word."""
from __future__ import annotations

import os
import time
from pathlib import Path

import psutil
import pytest
import soundfile as sf

from ctrlspeak.ipc import WorkerSettings
from ctrlspeak.models import registry
from ctrlspeak.supervision.supervisor import Supervisor

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_an_unloaded_worker_is_gone_and_the_next_request_reloads_it(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    audio, rate = sf.read(REPO / "models" / "data" / "sample-en.wav", dtype="float32")
    assert rate == 16000
    expected = (REPO / "models" / "data" / "sample-en.txt").read_text().strip()
    ref = registry.resolve("tiny-en")
    readies = []
    sup = Supervisor(lambda r: WorkerSettings(model=r, threads=2, weights_cache_dir=None), ref,
                     on_ready=readies.append)
    try:
        sup.start()
        deadline = time.monotonic() + 240
        while sup.ready is None:
            assert time.monotonic() < deadline, "the worker did not become ready"
            time.sleep(0.1)
        first = sup.pid
        assert first is not None and psutil.pid_exists(first)
        assert sup.submit(audio).result(timeout=120).text.strip() == expected

        assert sup.unload()
        deadline = time.monotonic() + 30
        while not _gone(first):
            assert time.monotonic() < deadline, f"worker {first} still running after unload"
            time.sleep(0.05)
        assert sup.pid is None and sup.ready is None
        assert first not in {c.pid for c in psutil.Process(os.getpid()).children(recursive=True)
                             if c.status() != psutil.STATUS_ZOMBIE}

        # held until the fresh worker has loaded, then transcribed by it
        future = sup.submit(audio)
        second = sup.pid
        assert second is not None and second != first
        assert future.result(timeout=240).text.strip() == expected
        assert len(readies) == 2 and psutil.pid_exists(second)
    finally:
        sup.close(timeout=10)
