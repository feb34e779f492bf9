"""`ctrlspeak retry` with the real worker (issue 10, item 21)."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from ctrlspeak.audio import files as audio
from ctrlspeak.history import History
from ctrlspeak.audio.journal import Journal
from ctrlspeak.models import registry

pytestmark = pytest.mark.integration


def test_retry_uses_the_model_the_recording_was_made_with(isolated_env, fault_row):
    journal = Journal(keep=1)
    rec = journal.start(model="tiny-en")
    rec.append(audio.load_file(registry.BUNDLED_SAMPLE))
    info = rec.commit(stopped_at=1.0)
    journal.done(info.id)  # transcribed once, kept for retry
    assert [e.id for e in journal.kept()] == [info.id]
    # the configured default (parakeet) is not downloaded: retry must not try it
    out = subprocess.run([sys.executable, "-m", "ctrlspeak", "retry", "--progress", "none"], capture_output=True,
                         text=True, timeout=600, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert out.returncode == 0, out.stderr
    said = (registry.BUNDLED_DIR / "sample-en.txt").read_text().split()
    heard = out.stdout.lower().replace(".", " ").split()  # the pipeline's capital and period
    assert len(set(heard) & set(said)) >= 0.8 * len(set(said)), out.stdout
    with History() as history:
        assert [(e.source, e.model) for e in history.recent()] == [("retry", "tiny-en")]
    fault_row("#21b `ctrlspeak retry` after the default model changed (not cached)",
              "uses the recording's own model (tiny-en): transcribed, no ERR_MODEL_NOT_CACHED")
