"""Downloading a model from a real HTTP hub on loopback (tests/hub_server.py), through the real
``ctrlspeak models download`` CLI and huggingface_hub's real client: progress, resuming,
server faults, disk space, proxies, the cache listing and removal."""
from __future__ import annotations

import hashlib
import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ctrlspeak import errors
from ctrlspeak.transfer import human_bytes
from ctrlspeak.models import cache, download, registry
from tests.cli_run import cli_env, run_cli
from tests.desktop.harness import wait_until
from tests.hub_server import Proxy, TestHub

PARAKEET = registry.resolve("parakeet")
#: what the hub serves as parakeet: the bundled tiny-en (tests/conftest.py HUB_MODELS)
SIZE = registry.bundled_path(registry.spec_for("tiny-en")).stat().st_size
MB = human_bytes(SIZE)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _served(hub: TestHub) -> tuple[bytes, str]:
    f = hub.files[(PARAKEET.hf_id, PARAKEET.filename)]
    return f.data, f.sha256


def _partials(env: dict[str, str]) -> list[Path]:
    return sorted(Path(env["HF_HUB_CACHE"]).rglob("*.incomplete"))


def _listed(env: dict[str, str], alias: str = "parakeet") -> dict:
    out = run_cli(env, "models", "list", "--json")
    assert out.returncode == 0, out.stderr
    return next(r for r in json.loads(out.stdout)["models"] if r["alias"] == alias)


@pytest.fixture
def env(tmp_path, test_hub):
    return cli_env(tmp_path, test_hub.endpoint)


@pytest.fixture
def hf_online(monkeypatch):
    """For the tests that download in this process: huggingface_hub reads HF_HUB_OFFLINE once,
    when first imported, and another test of the session may have set it then."""
    from huggingface_hub import constants

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)


def test_offline_mode_of_huggingface_hub_itself_is_offline(monkeypatch, tmp_path, test_hub):
    from huggingface_hub import constants

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # as if imported with HF_HUB_OFFLINE=1
    assert download.is_offline(False)
    with pytest.raises(errors.ModelNotCached, match="ctrlspeak is offline"):
        download.download(PARAKEET, cache_dir=str(tmp_path), endpoint=test_hub.endpoint)
    assert not test_hub.log


def test_huggingface_hub_itself_takes_the_test_hub_for_the_hub(tmp_path, test_hub, hf_online):
    # the library's own download, no ctrlspeak code: the protocol is the real client's
    from huggingface_hub import hf_hub_download

    data, sha = _served(test_hub)
    path = hf_hub_download(PARAKEET.hf_id, PARAKEET.filename, cache_dir=str(tmp_path), endpoint=test_hub.endpoint)
    assert _sha(Path(path)) == sha
    heads, gets = test_hub.served("hub", "HEAD"), test_hub.served("cdn", "GET")
    assert [h.status for h in heads] == [302] and "hf_hub" in heads[0].user_agent
    assert [(g.status, g.sent) for g in gets] == [(200, len(data))]  # the redirect's CDN URL, another origin


def test_download_shows_bytes_percent_speed_and_time_left_then_list_says_cached_with_size(env, test_hub):
    data, sha = _served(test_hub)
    test_hub.bytes_per_s = 4_000_000  # about 3 s: long enough to measure a speed
    out = run_cli(env, "models", "download", "parakeet")
    assert out.returncode == 0, out.stderr
    path = Path(out.stdout.strip())
    assert path.is_relative_to(Path(env["HF_HUB_CACHE"]) / "models--nvidia--parakeet-tdt-0.6b-v3" / "snapshots")
    assert _sha(path) == sha and path.is_symlink()  # the normal HF cache layout: a snapshot link to the blob
    lines = [line for line in out.stderr.splitlines() if line.startswith("ctrlspeak: downloading parakeet: ")]
    assert len(lines) >= 4, out.stderr
    assert any(f" of {MB} (" in line and "%)" in line and "MB/s" in line and " s left" in line for line in lines)
    assert f"ctrlspeak: downloaded parakeet: {MB} in" in out.stderr
    row = _listed(env)
    assert row["cached"] == "yes" and row["download_bytes"] == len(data) and row["size_bytes"] >= len(data)
    table = run_cli(env, "models", "list").stdout
    assert any(line.split()[1:2] == ["parakeet"] and line.split()[-3:] == ["yes", *MB.split()]
               for line in table.splitlines()), table
    again = run_cli(env, "models", "download", "parakeet")
    assert again.returncode == 0 and f"already downloaded ({MB})" in again.stderr
    assert len(test_hub.served("cdn", "GET")) == 1
    # only the probe and the file were asked for (no telemetry), as ctrlspeak
    assert {s.path for s in test_hub.served("hub")} == {"/", "/nvidia/parakeet-tdt-0.6b-v3/resolve/main/"
                                                             "parakeet-tdt-0.6b-v3.nemo"}
    assert all(s.user_agent.startswith("ctrlspeak/") and "torch" not in s.user_agent for s in test_hub.log)


def test_a_dropped_connection_resumes_from_the_byte_it_stopped_at(env, test_hub):
    data, sha = _served(test_hub)
    test_hub.fault("drop", after=4_000_000)
    out = run_cli(env, "models", "download", "parakeet")
    assert out.returncode == 0, out.stderr
    assert "the connection closed part-way; retrying in 1 s (try 2 of 6)" in out.stderr
    first, second = test_hub.served("cdn", "GET")
    assert (first.range_start, first.sent) == (None, 4_000_000)
    assert (second.status, second.range_start, second.sent) == (206, 4_000_000, len(data) - 4_000_000)
    assert _sha(Path(out.stdout.strip())) == sha and not _partials(env)


def test_ctrl_c_keeps_the_partial_and_the_next_download_serves_only_the_rest(env, test_hub):
    data, sha = _served(test_hub)
    test_hub.bytes_per_s = 1_500_000
    # Ctrl+C as a terminal delivers it: a suite started in the background by a shell without job
    # control inherits SIGINT ignored, and Python then never turns it into KeyboardInterrupt
    proc = subprocess.Popen([sys.executable, "-m", "ctrlspeak", "models", "download", "parakeet"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    wait_until(lambda: test_hub.bytes_sent() >= 3_000_000, 60, "3 MB to be sent")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "download interrupted;" in err and f"of {MB} kept: run `ctrlspeak models download parakeet` again" in err
    [partial] = _partials(env)
    kept = partial.stat().st_size
    # what the hub had sent when Ctrl+C came may still have been on its way (the kernel's socket
    # buffers, the client's last chunk): kept is most of it, and exactly its start
    assert 2_000_000 <= kept <= test_hub.bytes_sent() and kept < len(data), (kept, test_hub.bytes_sent())
    assert partial.read_bytes() == data[:kept]
    assert _listed(env)["cached"] == "partial" and _listed(env)["partial_bytes"] == kept
    test_hub.bytes_per_s = 0
    out = run_cli(env, "models", "download", "parakeet")
    assert out.returncode == 0, out.stderr
    last = test_hub.served("cdn", "GET")[-1]
    assert (last.range_start, last.sent) == (kept, len(data) - kept)
    assert f"continuing the {human_bytes(kept)} kept from before" in out.stderr
    assert _sha(Path(out.stdout.strip())) == sha and not _partials(env)


def test_5xx_answers_are_retried_and_the_download_completes(env, test_hub):
    _, sha = _served(test_hub)
    test_hub.fault("status", server="hub", status=502, times=1)
    test_hub.fault("status", server="cdn", status=503, times=2)
    out = run_cli(env, "models", "download", "parakeet")
    assert out.returncode == 0, out.stderr
    assert "the hub answered HTTP 502; retrying" in out.stderr and "the hub answered HTTP 503; retrying" in out.stderr
    assert [g.status for g in test_hub.served("cdn", "GET")] == [503, 503, 200]
    assert _sha(Path(out.stdout.strip())) == sha


def test_a_hub_that_keeps_failing_ends_in_err_model_download_with_a_hint(env, test_hub):
    test_hub.fault("status", server="hub", status=503, times=None)
    out = run_cli(env, "models", "download", "parakeet")
    assert out.returncode == errors.info_for("ERR_MODEL_DOWNLOAD").exit_status, out.stderr
    [line] = [line for line in out.stderr.splitlines() if "ERR_" in line]
    assert line.startswith("ctrlspeak: ERR_MODEL_DOWNLOAD: downloading parakeet failed: the hub answered HTTP 503 "
                           "(6 tries in a row)")
    assert "check the network, then run `ctrlspeak models download parakeet`" in line
    assert len([h for h in test_hub.served("hub", "HEAD") if "resolve" in h.path]) == download.MAX_TRIES
    assert not test_hub.served("cdn")


def test_dropped_connections_back_off_then_fail_keeping_what_arrived(tmp_path, test_hub, hf_online):
    # in-process, so the waits can be recorded instead of slept
    data, _ = _served(test_hub)
    test_hub.fault("drop", after=1_000_000, times=1)
    test_hub.fault("drop", after=0, times=None)
    waits: list[float] = []
    with pytest.raises(errors.ModelDownloadError) as info:
        download.download(PARAKEET, cache_dir=str(tmp_path), endpoint=test_hub.endpoint, sleep=waits.append)
    # the first attempt brought bytes (the count starts again after it), then none did
    assert waits == [1.0, 2.0, 4.0, 8.0, 16.0]
    assert f"the connection closed part-way (6 tries in a row); the 1.0 MB of {MB} fetched so far are kept" \
        in info.value.message
    [partial] = tmp_path.rglob("*.incomplete")
    assert partial.read_bytes() == data[:1_000_000]
    assert registry.cached_path(PARAKEET, str(tmp_path)) is None


def test_404_is_model_not_found(env, test_hub):
    test_hub.missing.add((PARAKEET.hf_id, PARAKEET.filename))
    out = run_cli(env, "models", "download", "parakeet")
    assert out.returncode == errors.info_for("ERR_MODEL_NOT_FOUND").exit_status, out.stderr
    assert "ERR_MODEL_NOT_FOUND: the repo 'nvidia/parakeet-tdt-0.6b-v3' has no file" in out.stderr
    out = run_cli(env, "models", "download", "someorg/no-such-model")
    assert out.returncode == errors.info_for("ERR_MODEL_NOT_FOUND").exit_status, out.stderr
    assert "ERR_MODEL_NOT_FOUND: the Hugging Face hub has no repo 'someorg/no-such-model'" in out.stderr
    assert not test_hub.served("cdn")


def test_a_body_of_the_wrong_size_is_refused_and_never_becomes_the_model(env, test_hub):
    test_hub.fault("length", delta=-1000, times=None)
    out = run_cli(env, "models", "download", "parakeet")
    assert out.returncode == errors.info_for("ERR_MODEL_DOWNLOAD").exit_status, out.stderr
    assert f"stopped before a byte was written: the hub announced {SIZE} bytes but its file server sends " \
        f"{SIZE - 1000}" in out.stderr
    assert len(test_hub.served("cdn", "GET")) == 1 and not _partials(env)  # not retried, nothing written
    assert _listed(env)["cached"] == "no"


def test_more_bytes_than_announced_discard_the_partial(env, test_hub):
    test_hub.fault("overflow", delta=10)
    out = run_cli(env, "models", "download", "parakeet")
    assert out.returncode == errors.info_for("ERR_MODEL_DOWNLOAD").exit_status, out.stderr
    assert f"sent more than the {SIZE} bytes it announced; the partial download was discarded" in out.stderr
    assert not _partials(env) and _listed(env)["cached"] == "no"


def test_corrupted_bytes_fail_the_checksum_and_are_discarded(env, test_hub):
    data, sha = _served(test_hub)
    test_hub.fault("corrupt")
    out = run_cli(env, "models", "download", "parakeet")
    assert out.returncode == errors.info_for("ERR_MODEL_DOWNLOAD").exit_status, out.stderr
    assert f"the download of parakeet is damaged (its sha256 is " in out.stderr and "it was discarded" in out.stderr
    assert not _partials(env) and _listed(env)["cached"] == "no"
    out = run_cli(env, "models", "download", "parakeet")  # a clean second try starts from zero
    assert out.returncode == 0 and _sha(Path(out.stdout.strip())) == sha
    assert test_hub.served("cdn", "GET")[-1].range_start is None


def test_a_server_that_ignores_the_range_starts_the_file_over_cleanly(env, test_hub):
    data, sha = _served(test_hub)
    test_hub.fault("drop", after=2_000_000)
    test_hub.fault("ignore_range")
    out = run_cli(env, "models", "download", "parakeet")
    assert out.returncode == 0, out.stderr
    assert [(g.range_start, g.status, g.sent) for g in test_hub.served("cdn", "GET")] == \
        [(None, 200, 2_000_000), (2_000_000, 200, len(data))]
    assert _sha(Path(out.stdout.strip())) == sha


def test_a_stalled_connection_times_out_and_resumes(tmp_path, test_hub):
    data, sha = _served(test_hub)
    env = cli_env(tmp_path, test_hub.endpoint, HF_HUB_DOWNLOAD_TIMEOUT="1")
    test_hub.fault("stall", after=2_000_000, seconds=5.0)
    out = run_cli(env, "models", "download", "parakeet")
    assert out.returncode == 0, out.stderr
    assert "no data arrived for a while; retrying in 1 s" in out.stderr
    assert test_hub.served("cdn", "GET")[-1].range_start == 2_000_000
    assert _sha(Path(out.stdout.strip())) == sha


def test_disk_space_is_checked_before_a_byte_is_fetched(env, test_hub):
    test_hub.fault("size", server="hub", size=10**15, times=None)  # a petabyte "model"
    out = run_cli(env, "models", "download", "parakeet")
    assert out.returncode == errors.info_for("ERR_DISK_SPACE").exit_status, out.stderr
    [line] = [line for line in out.stderr.splitlines() if "ERR_" in line]
    assert line.startswith("ctrlspeak: ERR_DISK_SPACE: not enough disk space: 1000 TB for parakeet + ")
    assert "for its fast-start copy need" in line and "free (free some space, or put the cache" in line
    assert not test_hub.served("cdn"), "no byte may be fetched"


def test_disk_check_adds_up_what_lands_on_one_disk(tmp_path):
    free = {"calls": 0}

    def fake_free(path: Path) -> int:
        free["calls"] += 1
        return 1000
    one, two = tmp_path / "hf", tmp_path / "weights"  # the same disk
    download.check_disk([download.DiskNeed(one, 600, "a"), download.DiskNeed(two, 300, "b")], free=fake_free)
    with pytest.raises(errors.DiskSpaceError, match="600 B a \\+ 500 B b need 1.1 kB on"):
        download.check_disk([download.DiskNeed(one, 600, "a"), download.DiskNeed(two, 500, "b")], free=fake_free)
    assert download.weights_cache_bytes(1000, int8=False) == 1000
    assert download.weights_cache_bytes(1000, int8=True) == 1500


def test_a_second_download_waits_for_the_first_and_shows_its_bytes(env, test_hub):
    data, sha = _served(test_hub)
    test_hub.bytes_per_s = 2_000_000
    first = subprocess.Popen([sys.executable, "-m", "ctrlspeak", "models", "download", "parakeet"], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_until(lambda: test_hub.bytes_sent() >= 1_000_000, 60, "the first download to start")
    second = run_cli(env, "models", "download", "parakeet")
    out, err = first.communicate(timeout=60)
    assert first.returncode == 0 and second.returncode == 0, (err, second.stderr)
    assert "another ctrlspeak process is downloading parakeet; waiting for it" in second.stderr
    assert "ctrlspeak: downloading parakeet: " in second.stderr  # the bytes the other one fetches
    assert out.strip() == second.stdout.strip() and _sha(Path(out.strip())) == sha
    assert test_hub.bytes_sent() == len(data)  # fetched once


# -- reachability and proxies ------------------------------------------------------------
def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_hub_fails_fast_as_not_cached(tmp_path, hf_online):
    t0 = time.monotonic()
    with pytest.raises(errors.ModelNotCached, match="cannot be reached: could not connect"):
        download.download(registry.resolve("canary-180m"), cache_dir=str(tmp_path),
                          endpoint=f"http://127.0.0.1:{_closed_port()}")
    assert time.monotonic() - t0 < 3


def test_through_all_proxy_a_hub_the_machine_cannot_resolve_is_reached(tmp_path, test_hub):
    with pytest.raises(OSError):
        socket.create_connection(("hub.test", test_hub.port), timeout=3)  # what a direct probe would do
    public = TestHub([(f.repo_id, f.filename, f.data) for f in test_hub.files.values()], public_host="hub.test")
    with public, Proxy(hosts={"hub.test": "127.0.0.1"}) as proxy:
        env = cli_env(tmp_path, public.endpoint, ALL_PROXY=proxy.url)
        out = run_cli(env, "models", "download", "parakeet")
        assert out.returncode == 0, out.stderr
        assert _sha(Path(out.stdout.strip())) == _served(public)[1]
    targets = [(r.method, r.target.split("?")[0]) for r in proxy.requests]
    assert ("HEAD", f"{public.endpoint}/") in targets  # the probe went through the proxy too
    assert ("GET", f"{public.cdn_url}/cdn/{_served(public)[1]}") in targets


def test_through_https_proxy_connect_to_a_tls_hub(tmp_path, test_hub):
    files = [(f.repo_id, f.filename, f.data) for f in test_hub.files.values()]
    with TestHub(files, tls_dir=tmp_path, public_host="hub.test") as tls_hub, \
            Proxy(hosts={"hub.test": "127.0.0.1"}) as proxy:
        env = cli_env(tmp_path / "home", tls_hub.endpoint, HTTPS_PROXY=proxy.url, SSL_CERT_FILE=str(tls_hub.cert))
        out = run_cli(env, "models", "download", "parakeet")
        assert out.returncode == 0, out.stderr
        assert _sha(Path(out.stdout.strip())) == _served(tls_hub)[1]
        # the daemon's first-run decision is the same probe: not "offline" behind this proxy
        code = "from ctrlspeak import config; from ctrlspeak.daemon.wiring import choose_model; " \
               "print(choose_model(config.Config(model='parakeet')))"
        seen = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
        assert "name='parakeet'" in seen.stdout and "None)" in seen.stdout, seen.stderr
    assert {r.target for r in proxy.requests if r.method == "CONNECT"} == \
        {f"hub.test:{tls_hub.port}", tls_hub.cdn_url.removeprefix("https://")}


def test_a_dead_proxy_means_unreachable_and_says_so(tmp_path, test_hub):
    env = cli_env(tmp_path, test_hub.endpoint.replace("127.0.0.1", "hub.test"),
                  ALL_PROXY=f"http://127.0.0.1:{_closed_port()}")
    out = run_cli(env, "models", "download", "parakeet", timeout=60)
    assert out.returncode == errors.info_for("ERR_MODEL_NOT_CACHED").exit_status, out.stderr
    assert "cannot be reached: could not connect: " in out.stderr and "(through the proxy http://127.0.0.1:" in out.stderr
