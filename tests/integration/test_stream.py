"""`ctrlspeak transcribe --stream`: a file through the live path with the real spawned worker and
the bundled tiny-en (a cache-aware streaming model, so the open segment goes to the worker's
stream chunk by chunk): the partials grow into exactly the final text, the first sentence is
final while the second is still being heard, and the final text is what the plain path says."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import load_tinyen

pytestmark = pytest.mark.integration


def _cli(*args: str) -> subprocess.CompletedProcess:
    out = subprocess.run([sys.executable, "-m", "ctrlspeak", "transcribe", "--model", "tiny-en", "--progress", "none",
                          *args], capture_output=True, text=True, timeout=600, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert out.returncode == 0, out.stderr
    return out


def test_partials_grow_into_exactly_the_final_text_at_real_time_pace(tmp_path):
    load_tinyen()
    from tinyen import speech

    first = speech.synth("the train was late again this morning", voice="en-us", rate=160, pitch=50)
    second = speech.synth("can you call me back in ten minutes", voice="en-us", rate=160, pitch=50)
    path = tmp_path / "two.wav"
    audio = np.concatenate([first, np.zeros(16000, np.float32), second])
    sf.write(path, audio, 16000, subtype="PCM_16")

    events = [json.loads(line) for line in _cli("--stream", "--realtime", "--json", str(path)).stdout.splitlines()]
    partials, final = events[:-1], events[-1]
    assert final["event"] == "final" and all(e["event"] == "partial" for e in partials)
    assert final["pieces"] == 2 and final["partials"] == len(partials)
    # the tentative words came from the model's stream, piece by piece (160 ms chunks; fewer,
    # longer pieces when the machine is busy)
    assert final["streamed"] >= 2, final
    finals = [p["final"] for p in partials]
    assert all(b.startswith(a) for a, b in zip(finals, finals[1:])), "final text never changes, only grows"
    # partials are the model's text; the final's text is the pipeline's (a capital and a period)
    assert finals[-1] == final["raw_text"] and partials[-1]["tentative"] == ""
    assert final["text"] == finals[-1][0].upper() + finals[-1][1:] + "."
    assert [p["seq"] for p in partials] == list(range(1, len(partials) + 1))
    # words showed up before their segment was over, and the first sentence was final while
    # the second was still tentative
    assert any(p["tentative"] and not p["final"] for p in partials)
    assert any(p["final"] and p["tentative"] for p in partials), finals
    # the same words as the plain path (both cut this file at its one pause)
    assert final["text"] == _cli(str(path)).stdout.strip()


def test_plain_stream_prints_the_text_as_it_becomes_final():
    from ctrlspeak.models import registry

    sample = registry.BUNDLED_SAMPLE
    out = _cli("--stream", str(sample)).stdout
    said = sample.with_suffix(".txt").read_text().strip()
    assert out == said[0].upper() + said[1:] + ".\n"  # as the text pipeline writes a model without case
    assert _cli("--stream", "--raw", str(sample)).stdout == said + "\n"


def test_realtime_without_stream_is_a_usage_error():
    from ctrlspeak.models import registry

    out = subprocess.run([sys.executable, "-m", "ctrlspeak", "transcribe", "--model", "tiny-en", "--realtime",
                          str(registry.BUNDLED_SAMPLE)], capture_output=True, text=True, timeout=120)
    assert out.returncode != 0 and "--realtime paces --stream: add --stream" in out.stderr


def test_a_chunk_size_the_model_lacks_is_named_and_the_nearest_pick_streams(tmp_path):
    load_tinyen()
    from tinyen import speech

    path = tmp_path / "one.wav"
    sf.write(path, speech.synth("we walked home from the station", voice="en-us", rate=160, pitch=50), 16000,
             subtype="PCM_16")
    out = _cli("--stream", "--json", "--chunk-ms", "300", str(path))
    assert "stream_chunk_ms = 300 is not a chunk size of this model (160, 560, 1120 ms); streaming in 160 ms" \
        in out.stderr
    big = json.loads(_cli("--stream", "--json", "--chunk-ms", "1120", str(path)).stdout.splitlines()[-1])
    small = json.loads(out.stdout.splitlines()[-1])
    assert small["streamed"] > big["streamed"] > 0, (small, big)
    assert small["text"] == big["text"], "the final text does not depend on the chunk"
