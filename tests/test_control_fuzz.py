"""Fuzzing the control socket: whatever clients send, the server answers and lives on.

One server serves the whole module; every test ends by checking it still answers a
valid status request and that its threads are alive. Replies are checked against an
oracle written from the protocol description, not from the server's code.
"""
from __future__ import annotations

import json
import os
import random
import shutil
import socket
import tempfile
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ctrlspeak import control, errors

MAX_LINE = 4096
KNOWN = {"toggle": {}, "start": {}, "stop": {}, "cancel": {}, "status": {}, "follow": {}, "model": {"name": str}}

# "healthy" is function-scoped on purpose: it checks the server once, after all examples
FUZZ = settings(max_examples=300, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def handler(request: dict) -> dict:
    if request["cmd"] == "model":
        if request["name"] == "boom":
            raise errors.ModelNotFound("no such model")
        if request["name"] == "crash":
            raise RuntimeError("handler bug")
        return {"model": request["name"]}
    if request["cmd"] == "status":
        return {"state": "idle", "pid": os.getpid()}
    return {"done": request["cmd"]}


@pytest.fixture(scope="module")
def server():
    base = Path(tempfile.mkdtemp(prefix="csf", dir="/tmp"))
    srv = control.ControlServer(control.socket_path(base / "rt"), handler, max_line=MAX_LINE, max_clients=80)
    srv.start()
    yield srv
    srv.close()
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def healthy(server):
    yield server
    assert server.running
    assert control.request("status", path=server.address, id="final") == {
        "ok": True, "state": "idle", "pid": os.getpid(), "id": "final"}


# -- oracle -----------------------------------------------------------------------------------

def expect_for_value(obj: object) -> tuple[str | None, object]:
    """(error code or None for success, the id the reply must echo or None)."""
    if not isinstance(obj, dict):
        return "ERR_USAGE", None
    rid = obj.get("id")
    if rid is not None and not (type(rid) is int or type(rid) is str):
        return "ERR_USAGE", None
    cmd = obj.get("cmd")
    if not isinstance(cmd, str) or cmd not in KNOWN:
        return "ERR_USAGE", rid
    spec = KNOWN[cmd]
    for key, value in obj.items():
        if key in ("cmd", "id"):
            continue
        if key not in spec or type(value) is not spec[key]:
            return "ERR_USAGE", rid
    if any(key not in obj for key in spec):
        return "ERR_USAGE", rid
    if cmd == "model" and obj["name"] == "boom":
        return "ERR_MODEL_NOT_FOUND", rid
    if cmd == "model" and obj["name"] == "crash":
        return "ERR_INTERNAL", rid
    return None, rid


def expect_for_line(line: bytes) -> tuple[str | None, object] | None:
    """What one newline-free line must produce; None: nothing (a blank line)."""
    if not line.strip():
        return None
    try:
        return expect_for_value(json.loads(line.decode("utf-8")))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return "ERR_USAGE", None


def check_reply(reply: dict, expected: tuple[str | None, object]) -> None:
    code, rid = expected
    assert isinstance(reply, dict) and isinstance(reply.get("ok"), bool), reply
    if rid is None:
        assert "id" not in reply, reply
    else:
        assert reply["id"] == rid, reply
    if code is None:
        assert reply["ok"] is True, reply
    else:
        assert reply["ok"] is False, reply
        err = reply["error"]
        assert err["code"] == code, reply
        assert isinstance(err["message"], str) and isinstance(err["hint"], str)


# -- plumbing ---------------------------------------------------------------------------------

class Conn:
    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(os.fspath(path))
        self.buf = b""

    def send(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server hung up (e.g. an over-long line); its answer is still readable

    def line(self) -> bytes | None:
        while b"\n" not in self.buf:
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line

    def reply(self) -> dict:
        line = self.line()
        assert line is not None, "the server closed the connection before answering"
        return json.loads(line)

    def close(self) -> None:
        self.sock.close()


def run_batch(path: Path, lines: list[bytes], pieces: list[int] | None = None) -> None:
    """Send newline-terminated lines (optionally cut at the given offsets) and check every reply."""
    data = b"".join(line + b"\n" for line in lines)
    conn = Conn(path)
    try:
        if pieces:
            cuts = sorted({min(p, len(data)) for p in pieces} | {0, len(data)})
            for a, b in zip(cuts, cuts[1:]):
                conn.send(data[a:b])
        else:
            conn.send(data)
        expected = [e for e in map(expect_for_line, lines) if e is not None]
        for exp in expected:
            check_reply(conn.reply(), exp)
    finally:
        conn.close()


def one_line(raw: bytes) -> bytes:
    return raw.replace(b"\n", b"")


# -- strategies -------------------------------------------------------------------------------

scalars = st.none() | st.booleans() | st.integers(-(2 ** 70), 2 ** 70) | st.floats() | st.text(max_size=30)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=12)
names = st.sampled_from(["canary", "parakeet", "boom", "crash", ""]) | st.text(max_size=20)
near_valid = st.fixed_dictionaries(
    {"cmd": st.sampled_from([*KNOWN, "Status", "dance", ""]) | scalars},
    optional={"id": st.integers(-1000, 2 ** 64) | st.text(max_size=12) | scalars,
              "name": names | scalars,
              "extra": json_values})
random_dicts = st.dictionaries(st.sampled_from(["cmd", "id", "name"]) | st.text(max_size=8),
                               json_values, max_size=5)


def encode(value: object) -> bytes:
    return json.dumps(value).encode()


any_line = (st.binary(max_size=200).map(one_line)
            | json_values.map(encode)
            | near_valid.map(encode)
            | random_dicts.map(encode)
            | st.just(b'{"cmd":"status"}'))


# -- tests ------------------------------------------------------------------------------------

@FUZZ
@given(lines=st.lists(st.binary(max_size=300).map(one_line), min_size=1, max_size=30))
def test_arbitrary_bytes(healthy, lines):
    run_batch(healthy.address, lines)


@FUZZ
@given(values=st.lists(json_values, min_size=1, max_size=20))
def test_arbitrary_json_values(healthy, values):
    run_batch(healthy.address, [encode(v) for v in values])


@settings(FUZZ, max_examples=600)
@given(values=st.lists(near_valid | random_dicts, min_size=1, max_size=20))
def test_dicts_near_the_protocol(healthy, values):
    run_batch(healthy.address, [encode(v) for v in values])


@FUZZ
@given(lines=st.lists(any_line, min_size=1, max_size=15),
       pieces=st.lists(st.integers(0, 3000), max_size=12))
def test_lines_split_at_random_points(healthy, lines, pieces):
    run_batch(healthy.address, lines, pieces)


@settings(FUZZ, max_examples=60)
@given(before=st.lists(any_line, max_size=5), size=st.integers(MAX_LINE + 1, 4 * MAX_LINE),
       newline=st.booleans(), fill=st.sampled_from([b"x", b"\xff", b'{"cmd":"status","x":"', b" "]))
def test_huge_lines_are_refused_and_closed(healthy, before, size, newline, fill):
    huge = (fill * size)[:size].replace(b"\n", b"")
    huge += b"y" * (size - len(huge))
    conn = Conn(healthy.address)
    try:
        conn.send(b"".join(line + b"\n" for line in before) + huge + (b"\n" if newline else b""))
        for exp in filter(None, map(expect_for_line, before)):
            check_reply(conn.reply(), exp)
        reply = conn.reply()
        assert reply["ok"] is False and reply["error"]["code"] == "ERR_USAGE"
        assert "longer than" in reply["error"]["message"]
        assert conn.line() is None
    finally:
        conn.close()


@FUZZ
@given(lines=st.lists(any_line, max_size=6), partial=st.binary(min_size=1, max_size=200).map(one_line),
       abrupt=st.booleans())
def test_half_written_line_then_eof(healthy, lines, partial, abrupt):
    conn = Conn(healthy.address)
    try:
        conn.send(b"".join(line + b"\n" for line in lines) + partial)
        if abrupt:
            return  # close mid-line without reading anything back
        conn.sock.shutdown(socket.SHUT_WR)
        for exp in filter(None, map(expect_for_line, lines)):
            check_reply(conn.reply(), exp)
        if partial.strip():
            reply = conn.reply()
            assert reply["ok"] is False and "incomplete" in reply["error"]["message"]
        assert conn.line() is None
    finally:
        conn.close()


def test_many_clients_at_once(healthy):
    """50 threads hammer the server together: good and bad lines, followers, hang-ups."""
    pool = [
        b'{"cmd":"status","id":1}', b'{"cmd":"toggle"}', b'{"cmd":"model","name":"canary"}',
        b'{"cmd":"model","name":"boom","id":"b"}', b'{"cmd":"model","name":"crash"}', b"{}", b"[]",
        b"not json", b"\xff\xfe", b'{"cmd":"nope","id":2}', b'{"cmd":"status","id":1.5}', b"   ",
        b'{"cmd":"model","name":7}', b'{"cmd":"stop","more":true}', b'"status"', b"[" * 3000,
    ]
    barrier = threading.Barrier(50)
    followers_ready = threading.Semaphore(0)
    failures: list[BaseException] = []

    def client(index: int) -> None:
        rng = random.Random(index)
        try:
            conn = Conn(healthy.address)
            try:
                barrier.wait(timeout=10)  # all 50 connected at once
                if index % 10 == 0:  # a follower
                    conn.send(b'{"cmd":"follow"}\n')
                    assert json.loads(conn.line())["following"] is True
                    followers_ready.release()
                    assert json.loads(conn.line()) == {"event": "ping"}
                    return
                for _ in range(5):
                    batch = [rng.choice(pool) for _ in range(rng.randint(1, 20))]
                    if index % 7 == 0 and rng.random() < 0.3:
                        conn.send(b"\n".join(batch) + b'\n{"cmd":"sta')
                        return  # hang up mid-line without reading
                    data = b"".join(line + b"\n" for line in batch)
                    cut = rng.randint(0, len(data))
                    conn.send(data[:cut])
                    conn.send(data[cut:])
                    for exp in filter(None, map(expect_for_line, batch)):
                        check_reply(conn.reply(), exp)
            finally:
                conn.close()
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            failures.append(exc)
            followers_ready.release()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    for _ in range(5):
        assert followers_ready.acquire(timeout=30)
    healthy.publish({"event": "ping"})
    for t in threads:
        t.join(30)
    assert not any(t.is_alive() for t in threads)
    assert failures == []
