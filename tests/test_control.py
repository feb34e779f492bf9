"""The control socket: round trips, errors, permissions, peers, followers, shutdown."""
from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import stat
import tempfile
import threading
import time
from pathlib import Path

import psutil
import pytest

from ctrlspeak import control, errors


class FakeHandler:
    """Answers like the daemon would, and records what it was asked."""

    def __init__(self) -> None:
        self.calls: list[dict] = []
        self.delay = 0.0

    def __call__(self, request: dict) -> dict:
        self.calls.append(request)
        if self.delay:
            time.sleep(self.delay)
        cmd = request["cmd"]
        if cmd == "model":
            if request["name"] == "nope":
                raise errors.ModelNotFound("unknown model 'nope'")
            if request["name"] == "crash":
                raise RuntimeError("handler bug")
            return {"model": request["name"]}
        if cmd == "status":
            return {"state": "idle", "pid": os.getpid()}
        return {"did": cmd}


@pytest.fixture
def rundir():
    # a short base: AF_UNIX paths are limited to ~104 bytes and tmp_path can be longer on macOS
    base = Path(tempfile.mkdtemp(prefix="cs", dir="/tmp"))
    yield base / "rt"
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def make_server(rundir):
    started: list[control.ControlServer] = []

    def make(handler=None, **kwargs) -> control.ControlServer:
        server = control.ControlServer(control.socket_path(rundir), handler or FakeHandler(), **kwargs)
        server.start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.close()


class Raw:
    """A bare socket client, for what request() would never send."""

    def __init__(self, path: Path, timeout: float = 5.0) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(os.fspath(path))
        self.buf = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def line(self) -> dict | None:
        while b"\n" not in self.buf:
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:  # the server closed while our input was unread
                chunk = b""
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def close(self) -> None:
        self.sock.close()


def control_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("ctrlspeak-control")]


# -- location ---------------------------------------------------------------------------------

def test_socket_path_honours_override_and_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("CTRLSPEAK_RUNTIME_DIR", str(tmp_path / "over"))
    assert control.socket_path() == tmp_path / "over" / "control.sock"
    assert control.socket_path(tmp_path / "x") == tmp_path / "x" / "control.sock"
    monkeypatch.delenv("CTRLSPEAK_RUNTIME_DIR")
    xdg = tmp_path / "xdg"
    xdg.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(xdg))
    assert control.socket_path() == xdg / "ctrlspeak" / "control.sock"


# -- round trips ------------------------------------------------------------------------------

@pytest.mark.parametrize("cmd", ["toggle", "start", "stop", "cancel"])
def test_simple_commands_round_trip(make_server, cmd):
    handler = FakeHandler()
    server = make_server(handler)
    reply = control.request(cmd, path=server.address)
    assert reply == {"ok": True, "did": cmd}
    assert handler.calls == [{"cmd": cmd}]


def test_status_and_model_round_trip_with_id(make_server):
    handler = FakeHandler()
    server = make_server(handler)
    assert control.request("status", path=server.address, id=7) == {
        "ok": True, "state": "idle", "pid": os.getpid(), "id": 7}
    assert control.request("model", path=server.address, name="canary", id="x") == {
        "ok": True, "model": "canary", "id": "x"}
    assert handler.calls[1] == {"cmd": "model", "name": "canary", "id": "x"}


def test_pipelined_requests_are_answered_in_order(make_server):
    server = make_server()
    raw = Raw(server.address)
    lines = [{"cmd": "status", "id": 0}, {"cmd": "bogus", "id": 1}, {"cmd": "toggle", "id": 2}, "oops",
             {"cmd": "model", "name": "nope", "id": 4}, {"cmd": "start", "id": 5}]
    raw.send(b"".join(json.dumps(x).encode() + b"\n" for x in lines) + b"\n  \n")
    replies = [raw.line() for _ in lines]
    assert [r.get("id") for r in replies] == [0, 1, 2, None, 4, 5]
    assert [r["ok"] for r in replies] == [True, False, True, False, False, True]
    raw.close()


def test_long_pipeline_is_answered_completely(make_server):
    server = make_server()
    raw = Raw(server.address)
    raw.send(b"".join(b'{"cmd":"status","id":%d}\n' % i for i in range(1000)))
    assert [raw.line()["id"] for _ in range(1000)] == list(range(1000))
    raw.close()


# -- errors -----------------------------------------------------------------------------------

def test_handler_error_is_rebuilt_on_the_client(make_server):
    server = make_server()
    with pytest.raises(errors.ModelNotFound) as info:
        control.request("model", path=server.address, name="nope")
    assert info.value.message == "unknown model 'nope'"
    assert info.value.hint == errors.info_for("ERR_MODEL_NOT_FOUND").hint
    raw = Raw(server.address)
    raw.send(b'{"cmd":"model","name":"nope","id":3}\n')
    assert raw.line() == {"ok": False, "id": 3, "error": {
        "code": "ERR_MODEL_NOT_FOUND", "message": "unknown model 'nope'",
        "hint": errors.info_for("ERR_MODEL_NOT_FOUND").hint}}
    raw.close()


def test_unexpected_handler_exception_is_internal_and_logged(make_server, caplog):
    server = make_server()
    with caplog.at_level(logging.ERROR, logger="ctrlspeak.control"):
        with pytest.raises(errors.CtrlspeakError) as info:
            control.request("model", path=server.address, name="crash")
    assert info.value.code == "ERR_INTERNAL"
    assert "RuntimeError" in info.value.message
    assert any(r.exc_info for r in caplog.records)
    assert server.running
    assert control.request("status", path=server.address)["state"] == "idle"


def test_handler_returning_garbage_is_internal(make_server):
    server = make_server(lambda request: {"value": float("nan")} if request["cmd"] == "start" else ["x"])
    for cmd in ("start", "stop"):
        with pytest.raises(errors.CtrlspeakError) as info:
            control.request(cmd, path=server.address)
        assert info.value.code == "ERR_INTERNAL"
    assert server.running


@pytest.mark.parametrize("line", [
    b"not json", b"[1, 2]", b'"status"', b"{}", b'{"cmd": 3}', b'{"cmd": "dance"}',
    b'{"cmd": "model"}', b'{"cmd": "model", "name": 5}', b'{"cmd": "status", "extra": 1}',
    b'{"cmd": "status", "id": 1.5}', b'{"cmd": "status", "id": true}', b"\xff\xfe{}",
    b"[" * 100_00 + b"]" * 100_00,
])
def test_malformed_requests_get_usage_errors_and_never_reach_the_handler(make_server, line):
    handler = FakeHandler()
    server = make_server(handler, max_line=64 * 1024)
    raw = Raw(server.address)
    raw.send(line + b"\n")
    reply = raw.line()
    assert reply["ok"] is False and reply["error"]["code"] == "ERR_USAGE"
    assert set(reply["error"]) == {"code", "message", "hint"}
    assert handler.calls == []
    raw.close()


def test_request_with_bad_arguments_raises_usage_error(make_server):
    server = make_server()
    with pytest.raises(errors.UsageError, match="unknown command"):
        control.request("dance", path=server.address)
    with pytest.raises(errors.UsageError, match="must be a str"):
        control.request("model", path=server.address, name=3)


def test_overlong_line_is_refused_and_the_client_closed(make_server):
    server = make_server(max_line=1024)
    other = Raw(server.address)
    raw = Raw(server.address)
    try:
        raw.send(b'{"cmd":"status","pad":"' + b"x" * 5000)
    except (BrokenPipeError, ConnectionResetError):
        pass
    reply = raw.line()
    assert reply["error"]["code"] == "ERR_USAGE" and "longer than 1024" in reply["error"]["message"]
    assert raw.line() is None
    other.send(b'{"cmd":"status"}\n')
    assert other.line()["ok"] is True


def test_half_line_then_eof_gets_an_error(make_server):
    server = make_server()
    raw = Raw(server.address)
    raw.send(b'{"cmd":"status"}\n{"cmd":"sta')
    raw.sock.shutdown(socket.SHUT_WR)
    assert raw.line()["ok"] is True
    assert "incomplete" in raw.line()["error"]["message"]
    assert raw.line() is None


def test_silent_and_stalled_clients_time_out(make_server):
    server = make_server(idle_timeout=0.3)
    silent, stalled = Raw(server.address), Raw(server.address)
    stalled.send(b'{"cmd":')
    assert "waiting for a request" in silent.line()["error"]["message"]
    assert "end of the request line" in stalled.line()["error"]["message"]
    assert silent.line() is None and stalled.line() is None


def test_a_client_that_keeps_talking_is_never_idle(make_server):
    server = make_server(idle_timeout=0.3)
    chatty = Raw(server.address)
    for _ in range(6):  # 0.6 s in all, never 0.3 s quiet
        chatty.send(b'{"cmd":"status"}\n')
        assert chatty.line()["ok"] is True
        time.sleep(0.1)


def test_served_clients_that_idle_time_out_and_free_their_slot(make_server, fault_row):
    """Issue 10, item 3: 32 clients that each sent one request and then idled locked
    `ctrlspeak toggle` out for as long as they stayed."""
    server = make_server(idle_timeout=0.5, max_clients=4)
    idlers = [Raw(server.address) for _ in range(4)]
    for raw in idlers:
        raw.send(b'{"cmd":"status"}\n')
        assert raw.line()["ok"] is True
    with pytest.raises(errors.ServiceError, match="too many"):
        control.request("toggle", path=server.address)
    for raw in idlers:  # each gets the same timeout line as a silent new client, then EOF
        assert "timed out after 0.5 s waiting for a request" in raw.line()["error"]["message"]
        assert raw.line() is None
    assert control.request("toggle", path=server.address) == {"ok": True, "did": "toggle"}
    fault_row("#3 32 clients send one request each, then idle", "each times out like a new idle one; toggle works")


def test_too_many_clients_are_refused(make_server):
    server = make_server(max_clients=2)
    kept = [Raw(server.address), Raw(server.address)]
    for raw in kept:
        raw.send(b'{"cmd":"status"}\n')
        assert raw.line()["ok"]
    with pytest.raises(errors.ServiceError, match="too many"):
        control.request("status", path=server.address)
    kept[0].close()
    deadline = time.monotonic() + 5
    while True:
        try:
            assert control.request("status", path=server.address)["ok"]
            break
        except errors.ServiceError:
            assert time.monotonic() < deadline
            time.sleep(0.02)


# -- files and permissions ----------------------------------------------------------------------

def test_directory_is_0700_and_socket_0600(make_server, rundir):
    server = make_server()
    assert stat.S_IMODE(os.stat(rundir).st_mode) == 0o700
    st = os.stat(server.address)
    assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600


def test_open_directory_is_tightened(rundir):
    rundir.mkdir(mode=0o755)
    os.chmod(rundir, 0o755)
    control.ensure_private_dir(rundir)
    assert stat.S_IMODE(os.stat(rundir).st_mode) == 0o700


def test_shared_sticky_directory_is_refused_not_locked_down(rundir):
    rundir.mkdir()
    os.chmod(rundir, 0o1777)
    with pytest.raises(errors.ConfigError, match="shared"):
        control.ensure_private_dir(rundir)
    assert stat.S_IMODE(os.stat(rundir).st_mode) == 0o1777


@pytest.mark.skipif(os.getuid() != 0, reason="chown to another uid needs root")
def test_directory_of_another_user_is_refused(rundir):
    rundir.mkdir(mode=0o700)
    os.chown(rundir, 4242, 4242)
    with pytest.raises(errors.ConfigError, match="belongs to uid 4242"):
        control.ControlServer(control.socket_path(rundir), FakeHandler()).start()


def test_regular_file_at_socket_path_is_refused(rundir):
    control.ensure_private_dir(rundir)
    control.socket_path(rundir).write_text("x")
    with pytest.raises(errors.ServiceError, match="not a socket"):
        control.ControlServer(control.socket_path(rundir), FakeHandler()).start()


def test_stale_socket_is_replaced(make_server, rundir):
    control.ensure_private_dir(rundir)
    path = control.socket_path(rundir)
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(os.fspath(path))
    dead.close()  # the file stays, nobody listens: a crashed daemon's leftover
    with pytest.raises(errors.DaemonNotRunning, match="nothing listens"):
        control.request("status", path=path)
    server = make_server()
    assert control.request("status", path=server.address)["ok"]


def test_second_server_on_a_live_socket_refuses(make_server, rundir):
    first = make_server()
    second = control.ControlServer(control.socket_path(rundir), FakeHandler())
    with pytest.raises(errors.ServiceError, match=rf"already running \(pid {os.getpid()}\)"):
        second.start()
    second.close()  # must not remove the first server's socket
    assert control.request("status", path=first.address)["ok"]
    assert os.path.exists(first.address)


def test_close_does_not_remove_a_successors_socket(rundir):
    path = control.socket_path(rundir)
    first = control.ControlServer(path, FakeHandler())
    first.start()
    os.unlink(path)
    second = control.ControlServer(path, FakeHandler())
    second.start()
    first.close()
    assert control.request("status", path=path)["ok"]
    second.close()
    assert not path.exists()


def test_too_long_path_is_a_clear_error():
    path = Path("/tmp") / ("d" * 120) / "control.sock"
    with pytest.raises(errors.ConfigError, match="too long"):
        control.request("status", path=path)


# -- peers ------------------------------------------------------------------------------------

def test_peer_credentials_are_ours(make_server):
    server = make_server()
    raw = Raw(server.address)
    creds = control.peer_credentials(raw.sock)
    assert creds.uid == os.getuid() and creds.pid == os.getpid()
    raw.close()


def test_other_uid_is_rejected_without_logging_its_payload(make_server, caplog):
    handler = FakeHandler()
    server = make_server(handler, allowed_uid=os.getuid() + 1)
    with caplog.at_level(logging.WARNING, logger="ctrlspeak.control"):
        with pytest.raises(errors.ServiceError, match="permission denied"):
            control.request("model", path=server.address, name="SECRET-PAYLOAD")
    assert handler.calls == []
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings and "rejected" in warnings[0].getMessage()
    assert all("SECRET" not in r.getMessage() for r in caplog.records)
    assert server.running


# -- followers --------------------------------------------------------------------------------

def test_follow_receives_published_events_in_order(make_server):
    server = make_server()
    events = control.follow(server.address)
    for i in range(200):
        server.publish({"event": "state", "n": i})
    got = [next(events) for _ in range(200)]
    assert [e["n"] for e in got] == list(range(200))
    raw = Raw(server.address)
    raw.send(b'{"cmd":"follow","id":1}\n')
    assert raw.line() == {"ok": True, "did": "follow", "following": True, "id": 1}
    server.publish({"event": "x"})
    assert raw.line() == {"event": "x"}
    server.close()
    assert list(events) == [{"event": "x"}]  # close() flushes what was queued, then the stream ends
    raw.close()


def test_events_published_during_the_follow_handler_arrive_after_the_ack(make_server):
    holder: dict[str, control.ControlServer] = {}

    def handler(request: dict) -> dict:
        if request["cmd"] == "follow":
            holder["server"].publish({"event": "snapshot"})
        return {}

    server = make_server(handler)
    holder["server"] = server
    raw = Raw(server.address)
    raw.send(b'{"cmd":"follow"}\n')
    assert raw.line() == {"ok": True, "following": True}
    assert raw.line() == {"event": "snapshot"}
    raw.close()


def test_slow_follower_is_dropped_without_blocking_publish(make_server, caplog):
    server = make_server(max_buffer=256 * 1024)
    slow = Raw(server.address)
    slow.send(b'{"cmd":"follow"}\n')
    fast = control.follow(server.address)
    received: list[dict] = []
    reader = threading.Thread(target=lambda: received.extend(fast), daemon=True)
    reader.start()
    payload = "x" * 300
    worst = 0.0
    with caplog.at_level(logging.WARNING, logger="ctrlspeak.control"):
        for i in range(3000):  # ~1 MB: far beyond the kernel buffer plus max_buffer
            t0 = time.perf_counter()
            server.publish({"n": i, "pad": payload})
            worst = max(worst, time.perf_counter() - t0)
            if i % 20 == 19:
                time.sleep(0.002)  # a realistic pace, which a reading follower keeps up with
        deadline = time.monotonic() + 5
        while len(received) < 3000 and time.monotonic() < deadline:
            time.sleep(0.01)
    assert worst < 0.5  # loose: this is about never waiting for the slow client, not speed
    assert [e["n"] for e in received] == list(range(3000))
    assert any("fell more than" in r.getMessage() for r in caplog.records)
    assert slow.line() == {"ok": True, "did": "follow", "following": True}
    count = 0
    while slow.line() is not None:  # what was already queued, then end of stream
        count += 1
    assert 0 < count < 3000
    server.close()
    reader.join(5)


def test_slow_handler_does_not_delay_events(make_server):
    handler = FakeHandler()
    server = make_server(handler)
    events = control.follow(server.address)
    handler.delay = 1.0
    slow = threading.Thread(target=control.request, args=("toggle",), kwargs={"path": server.address})
    slow.start()
    time.sleep(0.1)
    t0 = time.monotonic()
    server.publish({"event": "level", "v": 1})
    assert next(events) == {"event": "level", "v": 1}
    assert time.monotonic() - t0 < 0.5
    slow.join()


class BigReplies(FakeHandler):
    def __call__(self, request: dict) -> dict:
        return {**super().__call__(request), "pad": "x" * 4000}


def test_a_client_that_never_reads_its_replies_is_bounded_then_dropped(make_server, caplog, fault_row):
    """Issue 10, item 1: pipelining status without reading grew the daemon linearly."""
    handler = BigReplies()
    server = make_server(handler, max_buffer=64 * 1024, idle_timeout=1.5)
    writer = Raw(server.address, timeout=0.2)
    line = b'{"cmd":"status"}\n'
    stop = threading.Event()

    def pipeline() -> None:  # as fast as the server takes them, never reading a reply
        while not stop.is_set():
            try:
                writer.send(line * 64)
            except (TimeoutError, OSError):
                time.sleep(0.01)

    threading.Thread(target=pipeline, daemon=True).start()
    with caplog.at_level(logging.WARNING, logger="ctrlspeak.control"):
        time.sleep(0.6)
        answered = len(handler.calls)
        unsent = [c.unsent for c in server.clients()]
        time.sleep(0.6)
        assert len(handler.calls) == answered, "it stopped answering a client whose replies pile up"
        assert unsent and max(unsent) <= 64 * 1024
        # ~200 KB fit in the kernel's socket buffers; a 4 KB reply each: a few hundred at most
        assert answered < 200, answered
        deadline = time.monotonic() + 5
        while server.clients() and time.monotonic() < deadline:
            time.sleep(0.05)
        stop.set()
    assert not server.clients(), "dropped once it did not read for idle_timeout"
    assert any("has not read its replies" in r.getMessage() for r in caplog.records)
    assert control.request("status", path=server.address)["ok"], "everyone else is still served"
    writer.close()
    fault_row("#1 a client pipelines requests and never reads the replies",
              "stops reading it while a reply waits, drops it with a logged reason; memory bounded")


# -- shutdown and idling ----------------------------------------------------------------------

def test_close_leaves_no_thread_and_no_socket(make_server):
    before = len(control_threads())
    server = make_server()
    clients = [Raw(server.address) for _ in range(3)]
    clients[0].send(b'{"cmd":"follow"}\n')
    assert clients[0].line()["ok"]
    for raw in clients[1:]:  # served once, so each has its thread
        raw.send(b'{"cmd":"status"}\n')
        assert raw.line()["ok"]
    assert len(control_threads()) == before + 1 + 3, "the accepting thread and one per client"
    server.close()
    server.close()  # idempotent
    assert not server.address.exists()
    assert len(control_threads()) == before
    assert not server.running
    for raw in clients:
        assert raw.line() is None
    server.publish({"after": "close"})  # harmless


def test_no_server_means_daemon_not_running(rundir):
    with pytest.raises(errors.DaemonNotRunning) as info:
        control.request("status", path=control.socket_path(rundir))
    assert "\n" not in info.value.message
    with pytest.raises(errors.DaemonNotRunning):
        control.follow(control.socket_path(rundir))


def test_idle_server_does_not_spin(make_server):
    server = make_server()
    events = control.follow(server.address)  # an idle follower must not cause polling either
    assert server.running
    proc = psutil.Process()
    time.sleep(0.2)
    before = sum(proc.cpu_times()[:2])
    time.sleep(1.0)
    used = sum(proc.cpu_times()[:2]) - before
    assert used < 0.05, f"idle control server used {used:.3f} s of CPU in 1 s"
    server.close()
    assert list(events) == []


def test_immediate_commands_do_not_queue_behind_a_slow_one(make_server):
    def handler(request: dict) -> dict:
        if request["cmd"] == "toggle":
            time.sleep(1.5)  # a stop waiting for a slow paste
        return FakeHandler()(request)

    server = make_server(handler, immediate=("status",))
    slow = threading.Thread(target=control.request, args=("toggle",), kwargs={"path": server.address})
    slow.start()
    time.sleep(0.2)
    t0 = time.monotonic()
    assert control.request("status", path=server.address)["state"] == "idle"
    assert time.monotonic() - t0 < 1.0
    slow.join(5)


def test_a_follower_that_hangs_up_frees_its_slot_at_once(make_server):
    server = make_server(max_clients=1)
    for _ in range(3):  # a status bar restarted again and again, with no event in between
        events = control.follow(server.address)
        events.close()
        deadline = time.monotonic() + 2
        while server.clients() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not server.clients(), "the hang-up is noticed without an event to send"
    assert control.request("status", path=server.address)["ok"]


def test_a_follower_may_still_send_requests(make_server):
    server = make_server()
    raw = Raw(server.address)
    raw.send(b'{"cmd":"follow"}\n')
    assert raw.line() == {"ok": True, "did": "follow", "following": True}
    server.publish({"event": "a"})
    assert raw.line() == {"event": "a"}
    raw.send(b'{"cmd":"status","id":9}\n')
    assert raw.line() == {"ok": True, "state": "idle", "pid": os.getpid(), "id": 9}
    assert server.clients()[0].following
    raw.close()


def test_a_reply_over_max_buffer_drops_the_client_with_a_reason(make_server, caplog):
    server = make_server(BigReplies(), max_buffer=1024)
    raw = Raw(server.address)
    with caplog.at_level(logging.WARNING, logger="ctrlspeak.control"):
        raw.send(b'{"cmd":"status"}\n')
        assert raw.line() is None
    assert any("does not read its replies" in r.getMessage() for r in caplog.records)
    raw.close()
