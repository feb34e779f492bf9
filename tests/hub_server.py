"""A Hugging Face hub on loopback, for the download tests: the part of the hub protocol that
huggingface_hub (``get_hf_file_metadata``, ``hf_hub_download``) and ctrlspeak's resumable GET
use, and a small proxy to reach it through. Both can be told to misbehave.

    client --HEAD /{repo_id}/resolve/{revision}/{filename}------------>  hub  127.0.0.1:H
           <-- 302  Location: {cdn}/cdn/{sha256}?expires=...                (never sends bytes)
                    X-Repo-Commit, X-Linked-Etag: "{sha256}", X-Linked-Size, ETag
    client --GET /cdn/{sha256}  [Range: bytes=N-]---------------------->  cdn  127.0.0.1:C
           <-- 200 | 206 Content-Range: bytes N-{size-1}/{size}

As on the real hub, the CDN is another origin (another port), so huggingface_hub's HEAD does
not follow the redirect and reads the metadata from the 302 itself. Unknown repos answer 404
with ``X-Error-Code: RepoNotFound``, unknown files 404 ``EntryNotFound``. ``HEAD /`` answers
200 (ctrlspeak's reachability probe).

Faults (:meth:`TestHub.fault`) apply to the next requests for a file on their server (on
the hub: the resolve URLs, not the root): an HTTP status, a
connection dropped after N body bytes, a stall, slow sending, a body of the wrong length,
corrupted bytes, a Range ignored, a size announced that is not the file's. Every request is
recorded (:attr:`TestHub.log`) with the byte range it asked for and the bytes it was sent.

With ``tls`` the hub speaks HTTPS with a self-signed certificate for ``public_host`` (made
with openssl), so a client reaches it only by that name, through :class:`Proxy` (which
resolves names the client cannot) with ``SSL_CERT_FILE`` pointing at the certificate.

Plain Python, no pytest: the desktop tests use it too.
"""
from __future__ import annotations

import hashlib
import http.server
import re
import select
import socket
import socketserver
import ssl
import subprocess
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

_RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<file>.+)$")
_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")
_BLOCK = 64 * 1024


@dataclass(frozen=True)
class HubFile:
    repo_id: str
    filename: str
    data: bytes
    sha256: str
    commit: str

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass
class Served:
    """One request as the hub saw it."""

    server: str  # "hub" or "cdn"
    method: str
    path: str
    status: int = 0
    #: first byte asked for with Range (None: no Range header)
    range_start: int | None = None
    #: body bytes written to the socket
    sent: int = 0
    user_agent: str = ""


@dataclass
class Fault:
    kind: str  # status | drop | stall | slow | length | overflow | corrupt | ignore_range | size
    server: str = "cdn"
    #: how many matching requests it applies to; None = all from now on
    times: int | None = 1
    status: int = 503
    retry_after: str | None = "0"
    #: body bytes sent before a drop or a stall
    after: int = 0
    seconds: float = 0.0
    bytes_per_s: float = 0.0
    #: length: body this many bytes off; size: the size the HEAD announces
    delta: int = 0
    size: int = 0


def _commit_for(repo_id: str) -> str:
    return hashlib.sha1(repo_id.encode()).hexdigest()


def self_signed_cert(directory: Path, host: str) -> tuple[Path, Path]:
    """A certificate for ``host`` (and 127.0.0.1) and its key, made with the openssl tool."""
    cert, key = directory / "hub-cert.pem", directory / "hub-key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", f"/CN={host}", "-addext", f"subjectAltName=DNS:{host},IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True, timeout=60)
    return cert, key


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, hub: TestHub, name: str, tls: ssl.SSLContext | None) -> None:
        self.hub, self.name, self.tls = hub, name, tls
        super().__init__(("127.0.0.1", 0), _Handler)

    def get_request(self):  # noqa: ANN201  (socketserver's signature)
        conn, addr = super().get_request()
        if self.tls is not None:
            conn = self.tls.wrap_socket(conn, server_side=True)
        with self.hub._lock:
            self.hub._conns.add(conn)
        return conn, addr


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:  # quiet: the hub keeps its own log
        pass

    def do_HEAD(self) -> None:
        self._answer(head=True)

    def do_GET(self) -> None:
        self._answer(head=False)

    def _answer(self, head: bool) -> None:
        hub = self.server.hub
        served = Served(self.server.name, self.command, self.path, user_agent=self.headers.get("User-Agent", ""))
        match = _RANGE.match(self.headers.get("Range", "") or "")
        if match:
            served.range_start = int(match.group(1))
        hub._record(served)
        # on the hub, faults hit the resolve URLs only (not the probe of the root)
        is_file = self.server.name == "cdn" or _RESOLVE.match(urlsplit(self.path).path) is not None
        fault = hub._take_fault(self.server.name) if is_file else None
        try:
            if fault is not None and fault.kind == "status":
                headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
                self._simple(served, fault.status, b"server error\n", head, headers)
            elif self.server.name == "hub":
                self._resolve(served, head, fault)
            else:
                self._cdn(served, head, fault)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            self.close_connection = True

    def _simple(self, served: Served, status: int, body: bytes, head: bool,
                headers: dict[str, str] | None = None) -> None:
        served.status = status
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)
            served.sent = len(body)

    def _resolve(self, served: Served, head: bool, fault: Fault | None) -> None:
        hub = self.server.hub
        if self.path == "/":
            self._simple(served, 200, b"test hub\n", head)
            return
        m = _RESOLVE.match(urlsplit(self.path).path)
        if not m:
            self._simple(served, 404, b"not found\n", head)
            return
        repo, filename = m.group("repo"), unquote(m.group("file"))
        if repo not in hub.repos():
            self._simple(served, 404, b"Repository not found\n", head,
                         {"X-Error-Code": "RepoNotFound", "X-Error-Message": "Repository not found"})
            return
        f = hub.files.get((repo, filename))
        if f is None or (repo, filename) in hub.missing:
            self._simple(served, 404, b"Entry not found\n", head,
                         {"X-Error-Code": "EntryNotFound", "X-Error-Message": "Entry not found",
                          "X-Repo-Commit": _commit_for(repo)})
            return
        size = fault.size if fault is not None and fault.kind == "size" else f.size
        served.status = 302
        self.send_response(302)
        self.send_header("Location", f"{hub.cdn_url}/cdn/{f.sha256}?expires={int(time.time()) + 3600}")
        self.send_header("X-Repo-Commit", f.commit)
        self.send_header("X-Linked-Etag", f'"{f.sha256}"')
        self.send_header("X-Linked-Size", str(size))
        self.send_header("ETag", f'"{hashlib.sha1(f.data[:64]).hexdigest()}"')  # the git pointer's oid
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _cdn(self, served: Served, head: bool, fault: Fault | None) -> None:
        hub = self.server.hub
        sha = urlsplit(self.path).path.removeprefix("/cdn/")
        f = next((f for f in hub.files.values() if f.sha256 == sha), None)
        if f is None:
            self._simple(served, 404, b"no such object\n", head)
            return
        data = f.data
        if fault is not None and fault.kind == "corrupt":
            middle = len(data) // 2
            data = data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1:]
        start = served.range_start or 0
        ranged = served.range_start is not None and not (fault is not None and fault.kind == "ignore_range")
        if ranged and start >= len(data):
            self._simple(served, 416, b"", head, {"Content-Range": f"bytes */{len(data)}"})
            return
        body = data[start:] if ranged else data
        if fault is not None and fault.kind == "length":
            body = body[:len(body) + fault.delta] if fault.delta < 0 else body + b"\0" * fault.delta
        overflow = fault is not None and fault.kind == "overflow"
        if overflow:
            body = body + b"\0" * max(1, fault.delta)
        served.status = 206 if ranged else 200
        self.send_response(served.status)
        self.send_header("ETag", f'"{f.sha256}"')
        self.send_header("Accept-Ranges", "bytes")
        if ranged:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        if overflow:  # no length: the body ends when the connection closes
            self.send_header("Connection", "close")
            self.close_connection = True
        else:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self._send_body(served, body, fault)

    def _send_body(self, served: Served, body: bytes, fault: Fault | None) -> None:
        hub = self.server.hub
        cut = fault.after if fault is not None and fault.kind in ("drop", "stall") else None
        pos = 0
        while pos < len(body):
            if hub._stopping.is_set():
                raise ConnectionResetError("the hub is stopping")
            if cut is not None and pos >= cut:
                assert fault is not None
                if fault.kind == "drop":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                hub._stopping.wait(fault.seconds)
                cut = None
                continue
            # the pace is read for every block: a test may change hub.bytes_per_s mid-transfer
            rate = fault.bytes_per_s if fault is not None and fault.kind == "slow" else hub.bytes_per_s
            block = min(_BLOCK, int(rate / 10) or _BLOCK) if rate else _BLOCK  # ~10 blocks a second
            end = min(len(body), pos + block, len(body) if cut is None else cut)
            t0 = time.monotonic()
            self.wfile.write(body[pos:end])
            self.wfile.flush()
            served.sent += end - pos
            if rate:
                ahead = (end - pos) / rate - (time.monotonic() - t0)
                if ahead > 0:
                    hub._stopping.wait(ahead)
            pos = end


class TestHub:
    """The hub and its CDN: ``with TestHub(files) as hub: env["HF_ENDPOINT"] = hub.endpoint``."""

    __test__ = False  # not a pytest class

    def __init__(self, files: Iterable[tuple[str, str, Path | bytes]] = (), *, tls_dir: Path | None = None,
                 public_host: str = "127.0.0.1") -> None:
        self.files: dict[tuple[str, str], HubFile] = {}
        for repo_id, filename, source in files:
            self.add(repo_id, filename, source)
        self.missing: set[tuple[str, str]] = set()
        #: every body is sent at this pace (0: as fast as possible) unless a fault says otherwise;
        #: read for every block, so it may change while a body is being sent
        self.bytes_per_s = 0.0
        self.log: list[Served] = []
        self.public_host = public_host
        self.cert: Path | None = None
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._conns: set[socket.socket] = set()
        self._stopping = threading.Event()
        tls = None
        if tls_dir is not None:
            self.cert, key = self_signed_cert(tls_dir, public_host)
            tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            tls.load_cert_chain(self.cert, key)
        self._servers = [_Server(self, "hub", tls), _Server(self, "cdn", tls)]
        self._threads: list[threading.Thread] = []
        self._scheme = "https" if tls else "http"

    # -- files and faults --------------------------------------------------------------
    def add(self, repo_id: str, filename: str, source: Path | bytes) -> HubFile:
        data = source if isinstance(source, bytes) else Path(source).read_bytes()
        f = HubFile(repo_id, filename, data, hashlib.sha256(data).hexdigest(), _commit_for(repo_id))
        self.files[(repo_id, filename)] = f
        return f

    def repos(self) -> set[str]:
        return {repo for repo, _ in self.files}

    def fault(self, kind: str, **options: object) -> Fault:
        f = Fault(kind, **options)  # type: ignore[arg-type]
        with self._lock:
            self._faults.append(f)
        return f

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _take_fault(self, server: str) -> Fault | None:
        with self._lock:
            for f in self._faults:
                if f.server == server:
                    if f.times is not None:
                        f.times -= 1
                        if f.times <= 0:
                            self._faults.remove(f)
                    return f
        return None

    def _record(self, served: Served) -> None:
        with self._lock:
            self.log.append(served)

    def served(self, server: str | None = None, method: str | None = None) -> list[Served]:
        with self._lock:
            return [s for s in self.log if (server is None or s.server == server)
                    and (method is None or s.method == method)]

    def bytes_sent(self) -> int:
        return sum(s.sent for s in self.served("cdn", "GET"))

    # -- life cycle --------------------------------------------------------------------
    @property
    def port(self) -> int:
        return self._servers[0].server_address[1]

    @property
    def endpoint(self) -> str:
        return f"{self._scheme}://{self.public_host}:{self.port}"

    @property
    def cdn_url(self) -> str:
        return f"{self._scheme}://{self.public_host}:{self._servers[1].server_address[1]}"

    def start(self) -> TestHub:
        for s in self._servers:
            t = threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.05},
                                 name=f"test-hub-{s.name}", daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def cut(self) -> None:
        """A network blip: every open connection is cut; the hub goes on listening."""
        with self._lock:
            conns, self._conns = list(self._conns), set()
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def stop(self) -> None:
        """Stop listening and cut every open connection (a download in flight sees it drop)."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        for s in self._servers:
            s.shutdown()
            s.server_close()
        with self._lock:
            conns, self._conns = list(self._conns), set()
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.close()
        for t in self._threads:
            t.join(5)

    def __enter__(self) -> TestHub:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


# -- the proxy -------------------------------------------------------------------------
def _pipe(a: socket.socket, b: socket.socket, stop: threading.Event) -> None:
    """Copy bytes both ways until either side closes."""
    sockets = [a, b]
    while not stop.is_set():
        readable, _, _ = select.select(sockets, [], [], 0.2)
        for s in readable:
            try:
                data = s.recv(65536)
            except OSError:
                return
            if not data:
                return
            (b if s is a else a).sendall(data)


@dataclass
class ProxyRequest:
    method: str  # CONNECT, or the forwarded method
    target: str  # host:port for CONNECT, the absolute URL otherwise


class _ProxyHandler(socketserver.StreamRequestHandler):
    server: _ProxyServer

    def handle(self) -> None:
        proxy = self.server.proxy
        line = self.rfile.readline(65536).decode("latin-1").strip()
        if not line:
            return
        method, target, _version = (line.split(" ") + ["", ""])[:3]
        headers: list[str] = []
        while True:
            h = self.rfile.readline(65536).decode("latin-1")
            if h in ("\r\n", "\n", ""):
                break
            headers.append(h.rstrip("\r\n"))
        with proxy._lock:
            proxy.requests.append(ProxyRequest(method, target))
        try:
            if method == "CONNECT":
                host, _, port = target.rpartition(":")
                upstream = socket.create_connection((proxy.resolve(host), int(port)), timeout=10)
                self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                self.wfile.flush()
            else:
                upstream = self._forward(method, target, headers)
        except OSError as exc:
            self.wfile.write(f"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nX-Why: {exc}\r\n\r\n".encode())
            return
        with upstream:
            upstream.settimeout(None)
            _pipe(self.connection, upstream, proxy._stopping)

    def _forward(self, method: str, target: str, headers: list[str]) -> socket.socket:
        """Send an absolute-form request on as an origin-form one; the answer is piped back."""
        url = urlsplit(target)
        upstream = socket.create_connection((self.server.proxy.resolve(url.hostname or ""), url.port or 80),
                                            timeout=10)
        path = url.path + (f"?{url.query}" if url.query else "")
        kept = [h for h in headers if not h.lower().startswith(("connection:", "proxy-", "keep-alive:"))]
        body = b""
        length = next((int(h.split(":", 1)[1]) for h in kept if h.lower().startswith("content-length:")), 0)
        if length:
            body = self.rfile.read(length)
        upstream.sendall(f"{method} {path} HTTP/1.1\r\n".encode() + "".join(f"{h}\r\n" for h in kept).encode()
                         + b"Connection: close\r\n\r\n" + body)
        return upstream


class _ProxyServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, proxy: Proxy) -> None:
        self.proxy = proxy
        super().__init__(("127.0.0.1", 0), _ProxyHandler)


@dataclass
class Proxy:
    """A CONNECT (HTTPS) and forwarding (HTTP) proxy on loopback that resolves ``hosts``
    itself, as a proxy on a network does for names the client cannot resolve."""

    hosts: dict[str, str] = field(default_factory=dict)
    requests: list[ProxyRequest] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = _ProxyServer(self)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="test-proxy", daemon=True)

    def resolve(self, host: str) -> str:
        return self.hosts.get(host, host)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> Proxy:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
