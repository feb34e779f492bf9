"""The first run, for real: `ctrlspeak run` with nothing cached downloads the configured model
from the test hub (tests/hub_server.py: a slow, flaky line) with its progress on the console,
the tray icon, a notification and `status --follow`; a dictation made meanwhile is kept and
typed once the model is ready. Without the hub, the bundled model stands in with a notice."""
from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

from ctrlspeak.models import registry
from ctrlspeak.transfer import human_bytes
from tests.desktop.daemon_proc import SENTENCE, dictate
from tests.desktop.harness import STACK_TOOLS, Desktop, require, wait_until
from tests.desktop.test_tray import _icon_title

pytestmark = pytest.mark.desktop

#: tiny-en, served as Parakeet v3 (tests/conftest.py HUB_MODELS)
SIZE = registry.bundled_path(registry.spec_for("tiny-en")).stat().st_size
MB = human_bytes(SIZE)


@pytest.fixture(scope="module")
def desktop_stack() -> Iterator[Desktop]:  # overrides conftest's: the icon needs a tray host
    require((*STACK_TOOLS, "trayer"))
    with Desktop(start_tray=True) as stack:
        wait_until(stack.tray_ready, 15, "the tray host")
        yield stack


def _first_run_env(tmp_path, endpoint: str) -> dict[str, str | None]:
    return {"HF_HUB_OFFLINE": None, "HF_ENDPOINT": endpoint, "HF_HUB_CACHE": str(tmp_path / "hf"),
            "CTRLSPEAK_TRAY": "true"}


def test_first_run_downloads_with_progress_everywhere_and_a_dictation_meanwhile_is_typed(
        desktop, paste_target, start_daemon, test_hub, tmp_path):
    test_hub.bytes_per_s = 150_000  # a slow line (the model would take 90 s or more)
    daemon = start_daemon("--model", "parakeet", env_overrides=_first_run_env(tmp_path, test_hub.endpoint))
    wait_until(lambda: daemon.status().get("state"), 60, "the control socket")
    events_file = tmp_path / "follow.jsonl"
    with open(events_file, "wb") as out:
        follower = subprocess.Popen([sys.executable, "-m", "ctrlspeak", "status", "--follow"], env=daemon.env,
                                    stdout=out, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        # status, the tray icon and a notification say what is happening and how long it takes
        status = wait_until(lambda: (s := daemon.status()).get("download") and s, 60,
                            "download progress on `ctrlspeak status`")
        assert status["state"] == "loading" and status["download"]["total_bytes"] == SIZE
        plain = daemon.ctl("status").stdout
        assert plain.startswith("loading  model=parakeet") and "\ndownloading parakeet: " in plain, plain
        assert f" of {MB} (" in plain
        wait_until(lambda: f" of {MB} (" in _icon_title(desktop)
                   and _icon_title(desktop).startswith("ctrlspeak: downloading parakeet: "), 30,
                   "the tray icon to show the download")
        note = desktop.wait_for_notification(lambda n: "downloading parakeet" in n.body and "left" in n.body,
                                             timeout=60)
        assert "You can dictate meanwhile" in note.body and "B/s, " in note.body

        paste_target.focus()
        dictate(desktop, daemon, lambda: daemon.ctl("start"), lambda: daemon.ctl("stop"))
        assert test_hub.bytes_sent() < SIZE, "the dictation must have ended while the model was downloading"
        test_hub.cut()  # and a flaky one: the connection drops...
        test_hub.bytes_per_s = 1_000_000  # ...then it gets faster (the test need not wait 90 s)
        kept = desktop.wait_for_notification(lambda n: "recording is kept" in n.body, timeout=30)
        assert "parakeet is still downloading (" in kept.body and "left)" in kept.body

        assert paste_target.wait_for_text(lambda t: t.strip() != "", timeout=300).strip() == SENTENCE
        ready = desktop.wait_for_notification(lambda n: n.summary == "ctrlspeak is ready", timeout=30)
        assert f"downloaded {MB} in" in ready.body
        wait_until(lambda: '"done"' in events_file.read_text(), 30, "the dictation's done event on the follower")
    finally:
        follower.terminate()
        follower.wait(10)

    events = [e for line in events_file.read_text().splitlines() if line.strip()
              and (e := json.loads(line))["event"] == "status"]  # the partials' text: test_daemon_e2e
    live = [e for e in events if e.get("done_bytes") is not None]
    assert [e["done_bytes"] for e in live] == sorted(e["done_bytes"] for e in live)
    assert live[-1]["done_bytes"] == SIZE and all(e["total_bytes"] == SIZE for e in live)
    assert any("rate_bps" in e and "eta_s" in e for e in live)
    assert any(e["state"] == "transcribing" and e["message"] == "your recording is kept and waits for parakeet"
               for e in live), "the follower sees the recording wait for the download"
    assert any("downloading parakeet: the connection closed part-way; retrying in 1 s" in n.body
               for n in desktop.notifications()), "the dropped connection is said, and retried"
    states = [e["state"] for e in events]
    assert states.index("recording") < states.index("ready") < states.index("done")
    # the console line (a log here, not a terminal): progress lines with speed and time left
    # ("downloading parakeet: ..." before the dictation, "your recording ... waits" after it)
    console = [line for line in daemon.log_text().splitlines() if f" of {MB} (" in line]
    assert any("B/s, " in line and " left" in line for line in console) and len(console) < 60, console
    assert f"downloaded {MB} in" in daemon.log_text()
    # the flaky line cost one resumed request, not a second download; and nothing but the model was asked for
    first, second = test_hub.served("cdn", "GET")
    assert (first.range_start, second.range_start, second.sent) == (None, first.sent, SIZE - first.sent)
    assert {s.path.split("/resolve/")[0] for s in test_hub.served("hub")} <= {"/", "/nvidia/parakeet-tdt-0.6b-v3"}
    # and the model in use is not removed from under the daemon
    removed = daemon.ctl("models", "remove", "parakeet")
    assert removed.returncode == 2 and "is the running daemon's model" in removed.stderr


def test_first_run_without_the_hub_uses_the_bundled_model_and_says_so(desktop, start_daemon, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    daemon = start_daemon("--model", "parakeet", env_overrides=_first_run_env(tmp_path, dead))
    status = daemon.wait_ready()
    assert status["model"] == "tiny-en"
    note = desktop.wait_for_notification(lambda n: "is not downloaded and the network is unreachable" in n.body,
                                         timeout=30)
    assert "ctrlspeak models download parakeet" in note.body
