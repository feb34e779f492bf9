"""Talking to the Hugging Face hub: where it is, whether it answers, what a file is, its bytes.

Used by :mod:`ctrlspeak.models.download` in the main process and in the worker; no torch.
Every request goes through huggingface_hub's own HTTP client (``get_session()``), so the
proxy variables (``HTTPS_PROXY``, ``ALL_PROXY``, ``NO_PROXY``), ``SSL_CERT_FILE``, the
user agent and offline mode apply to the probe exactly as they do to the download. The
endpoint is read from ``HF_ENDPOINT`` when asked, not when huggingface_hub was imported.

Failures are sorted into three kinds: :class:`Transient` (worth another try after a
wait: 5xx, 429, a dropped or stalled connection), a
:class:`~ctrlspeak.errors.ModelNotFound` (the hub says the repo or file does not exist),
and :class:`~ctrlspeak.errors.ModelDownloadError` for the rest (a file server whose size
contradicts the hub's is one: its bytes are never written). :class:`CorruptPartial` says
the partial on disk must go.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ctrlspeak import __version__, errors
from ctrlspeak.ipc import ModelRef

#: the quick probe's bound: an unplugged machine is told within this, not after retries
PROBE_TIMEOUT_S = 3.0
_RETRY_STATUS = (408, 429, 500, 502, 503, 504)


class Transient(Exception):
    """A failure that another attempt may not meet. ``retry_after`` is the server's wish."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class CorruptPartial(Exception):
    """The bytes on disk cannot be the file's start: the partial download must go."""


@dataclass(frozen=True)
class RemoteFile:
    """What the hub's HEAD on the resolve URL says about a file."""

    url: str
    #: where the bytes come from (the CDN the hub redirects to)
    location: str
    etag: str
    commit: str
    size: int | None


def endpoint() -> str:
    from huggingface_hub import constants

    return os.environ.get("HF_ENDPOINT", "").strip().rstrip("/") or constants.ENDPOINT


def _why(exc: BaseException) -> str:
    """A short reason for a transport failure (the exception's own text can run to a paragraph)."""
    import httpx2

    kinds = ((httpx2.ProxyError, "the proxy refused the connection"),
             (httpx2.ConnectTimeout, "connecting timed out"),
             (httpx2.ReadTimeout, "no data arrived for a while"),
             (httpx2.TimeoutException, "it timed out"),
             (httpx2.ConnectError, "could not connect"),
             (httpx2.RemoteProtocolError, "the connection closed part-way"),
             (httpx2.NetworkError, "the network failed"))
    for cls, text in kinds:
        if isinstance(exc, cls):
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            return f"{text}: {first[:120]}" if first and cls in (httpx2.ConnectError, httpx2.ProxyError) else text
    return type(exc).__name__


def probe(url: str | None = None, timeout: float = PROBE_TIMEOUT_S) -> str | None:
    """None when the hub answers at all (any HTTP status); otherwise why it does not.

    A HEAD through the same client the download uses: behind a proxy a direct TCP
    connection to the hub fails while the download would work, so the probe must take the
    proxy's route too.
    """
    import httpx2
    from huggingface_hub import errors as hf_errors
    from huggingface_hub.utils import get_session

    url = url or endpoint()
    try:
        get_session().head(url + "/", headers=_headers(), timeout=timeout, follow_redirects=False)
    except httpx2.HTTPError as exc:
        proxy = proxy_for(url)
        return f"{_why(exc)} (through the proxy {proxy})" if proxy else _why(exc)
    except (ImportError, ValueError) as exc:  # e.g. ALL_PROXY=socks5://... without socksio installed
        return f"the proxy setting cannot be used ({exc})"
    except hf_errors.OfflineModeIsEnabled:
        return "huggingface_hub's offline mode is on (HF_HUB_OFFLINE)"
    return None


def proxy_for(url: str) -> str | None:
    """The proxy the environment sets for ``url`` (for messages; the client decides itself)."""
    import urllib.request
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    proxies = urllib.request.getproxies()
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    if proxy and urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    return proxy


def _headers() -> dict[str, str]:
    from huggingface_hub.utils import build_hf_headers

    return build_hf_headers(library_name="ctrlspeak", library_version=__version__)


def _retry_after(headers: object) -> float | None:
    value = getattr(headers, "get", lambda _k: None)("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _hub_error(ref: ModelRef, exc: Exception) -> Exception:
    """Sort a huggingface_hub error into Transient, ModelNotFound or ModelDownloadError."""
    from huggingface_hub import errors as hf_errors

    if isinstance(exc, (hf_errors.RepositoryNotFoundError, hf_errors.RevisionNotFoundError)):
        return errors.ModelNotFound(f"the Hugging Face hub has no repo {ref.hf_id!r}")
    if isinstance(exc, hf_errors.GatedRepoError):
        return errors.ModelNotFound(f"the repo {ref.hf_id!r} is gated: it needs a Hugging Face token",
                                    hint="log in with `hf auth login`, or pick another model")
    if isinstance(exc, hf_errors.EntryNotFoundError):
        return errors.ModelNotFound(f"the repo {ref.hf_id!r} has no file {ref.filename!r}")
    if isinstance(exc, hf_errors.HfHubHTTPError) and exc.response is not None:
        status = exc.response.status_code
        if status in _RETRY_STATUS:
            return Transient(f"the hub answered HTTP {status}", _retry_after(exc.response.headers))
        return errors.ModelDownloadError(f"the hub refused {ref.hf_id!r}: HTTP {status}")
    return errors.ModelDownloadError(f"the hub's answer for {ref.hf_id!r} was not usable: {_why(exc)}")


def remote_file(ref: ModelRef, url_base: str) -> RemoteFile:
    """HEAD the file's resolve URL (huggingface_hub parses the hub's headers)."""
    import httpx2
    from huggingface_hub import constants
    from huggingface_hub import errors as hf_errors
    from huggingface_hub.file_download import get_hf_file_metadata, hf_hub_url

    assert ref.hf_id and ref.filename
    url = hf_hub_url(ref.hf_id, ref.filename, endpoint=url_base)
    try:
        meta = get_hf_file_metadata(url, timeout=constants.HF_HUB_ETAG_TIMEOUT, endpoint=url_base,
                                    library_name="ctrlspeak", library_version=__version__)
    except httpx2.TransportError as exc:
        raise Transient(f"the hub did not answer ({_why(exc)})") from exc
    except (hf_errors.HfHubHTTPError, hf_errors.FileMetadataError) as exc:
        raise _hub_error(ref, exc) from exc
    if meta.commit_hash is None or meta.etag is None:
        raise errors.ModelDownloadError(
            f"{url_base} answered without the hub's X-Repo-Commit/ETag headers: it does not look like a "
            "Hugging Face hub", hint="check HF_ENDPOINT and the proxy settings")
    return RemoteFile(url=url, location=meta.location or url, etag=meta.etag, commit=meta.commit_hash,
                      size=meta.size)


def fetch(ref: ModelRef, remote: RemoteFile, partial: Path, on_bytes: Callable[[int], None]) -> None:
    """One attempt: append the rest of ``remote`` to ``partial`` (created if missing).

    Asks for the bytes after those on disk (a Range request). Returns once the file is
    complete; raises :class:`Transient` when this attempt got cut short (what it did get
    stays on disk) and :class:`CorruptPartial` when the server's answer contradicts it.
    ``on_bytes`` gets the size on disk after every chunk. A KeyboardInterrupt leaves the
    partial as it is, for the next attempt.
    """
    import httpx2
    from huggingface_hub import constants
    from huggingface_hub import errors as hf_errors
    from huggingface_hub.utils import get_session, hf_raise_for_status

    offset = partial.stat().st_size if partial.exists() else 0
    size = remote.size
    headers = _headers()
    headers["Accept-Encoding"] = "identity"  # the size on the wire must be the file's
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        with get_session().stream("GET", remote.location, headers=headers, follow_redirects=True,
                                  timeout=httpx2.Timeout(constants.HF_HUB_DOWNLOAD_TIMEOUT)) as response:
            try:
                hf_raise_for_status(response)
            except hf_errors.HfHubHTTPError as exc:
                if response.status_code == 416:  # the range starts at or past the end
                    raise CorruptPartial(f"the hub refused to continue at byte {offset}") from exc
                raise _hub_error(ref, exc) from exc
            start = _check_range(response, offset, size)
            length = response.headers.get("Content-Length")
            if size is not None and length is not None and start + int(length) != size:
                # the file server contradicts the hub: nothing of it is written, no retry
                raise errors.ModelDownloadError(
                    f"downloading {ref.name} stopped before a byte was written: the hub announced {size} bytes "
                    f"but its file server sends {start + int(length)}",
                    hint=f"the hub is inconsistent right now: try `ctrlspeak models download {ref.name}` later")
            with open(partial, "r+b" if partial.exists() else "wb") as out:
                out.seek(start)
                out.truncate()
                have = start
                for chunk in response.iter_bytes():  # as they arrive: a drop loses nothing received
                    if size is not None and have + len(chunk) > size:
                        raise CorruptPartial(f"the hub sent more than the {size} bytes it announced")
                    out.write(chunk)
                    have += len(chunk)
                    on_bytes(have)
    except httpx2.TransportError as exc:
        raise Transient(_why(exc)) from exc
    if size is not None and have < size:
        raise Transient(f"the connection closed after {have} of {size} bytes")


def _check_range(response: object, offset: int, size: int | None) -> int:
    """Where the body starts in the file: ``offset`` for a 206, 0 when the server ignored the range."""
    status = response.status_code  # type: ignore[attr-defined]
    if not offset or status == 200:
        return 0
    if status != 206:
        raise Transient(f"the hub answered HTTP {status} to a range request")
    content_range = response.headers.get("Content-Range", "")  # type: ignore[attr-defined]
    # "bytes 1000-1999/2000"
    try:
        span, _, total = content_range.removeprefix("bytes ").partition("/")
        first = int(span.split("-", 1)[0])
    except ValueError:
        raise Transient(f"the hub answered a range request with Content-Range {content_range!r}") from None
    if first != offset or (size is not None and total not in ("*", str(size))):
        raise CorruptPartial(f"the hub sent {content_range!r} for a request from byte {offset}")
    return offset
