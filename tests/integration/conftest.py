from __future__ import annotations

import pytest

from ctrlspeak.ipc import ModelRef, WorkerSettings
from ctrlspeak.supervision.client import WorkerClient


@pytest.fixture
def spawn_worker():
    """Start real spawned workers; every one is closed after the test."""
    started: list[WorkerClient] = []

    def start(ref: ModelRef, **settings) -> WorkerClient:
        settings.setdefault("threads", 2)
        client = WorkerClient(WorkerSettings(model=ref, **settings))
        client.start()
        started.append(client)
        return client

    yield start
    for client in started:
        client.close(timeout=10)
