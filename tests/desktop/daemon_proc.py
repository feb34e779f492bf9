"""The real `ctrlspeak run` daemon as a test subject on the virtual desktop."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.desktop.harness import Desktop, speak, wait_until
from tests.faults import SCENARIOS  # noqa: F401 - the fault-injection table, printed by tests/conftest.py

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("CTRLSPEAK_ARTIFACTS", REPO / "artifacts"))
MODEL = os.environ.get("CTRLSPEAK_E2E_MODEL", "tiny-en")

#: spoken by espeak-ng, and expected word for word (a held-out sentence for tiny-en)
#: every word is in tiny-en's vocabulary and none is a homophone (see train_tiny_model.homophones)
#: and tiny-en (v1, and each v2 12 times in 12) got it right with random lead-in, gain and a 44.1 kHz round trip
SENTENCE = "call my mother tomorrow morning and send the report"


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


def dictate(desktop: Desktop, daemon: RunningDaemon, begin, end, sentence: str = SENTENCE) -> None:
    speech = speak(sentence)
    begin()
    daemon.wait_state("recording", timeout=15)
    desktop.mic.play(speech, lead_s=0.3, tail_s=0.8)
    assert desktop.mic.wait_played(timeout=60)
    end()


# sentences tiny-en got right 12 times in 12 (random lead-in, gain, 44.1 kHz round trip, settled
# edges). Models differ in which they miss: an early v2 dropped "after" in "we walked home after
# the movie last night", the one after it wrote "last night night" in "we walked home from the
# station last night" 3-6 times in 12; each was swapped for a held-out sentence the model gets right
LONG = ["the kids played in the garden all afternoon",
        "call my mother tomorrow morning",
        "we should visit the park on sunday afternoon"]


def assert_joined_exactly(words: list[str], sentences: list[str], context: str = "") -> None:
    """Segments joined with no word dropped, doubled, merged, clipped or misheard: the words
    are the sentences' exactly (tiny-en v2 got each of LONG right 12 times in 12, with random
    lead-in, gain and a 44.1 kHz round trip, so a wrong word is the path's, not the model's)."""
    expected = " ".join(sentences).split()
    assert words == expected, f"got {' '.join(words)!r}, want {' '.join(expected)!r}\n{context}"
