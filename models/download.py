"""Fetching a model's ``.nemo`` into the local Hugging Face cache: resumable, checked, with progress.

Used by ``ctrlspeak models download`` in the main process and by the worker when a model
is not cached yet. No torch here. The steps::

    cached?  -> done, no network at all
    offline? -> ERR_MODEL_NOT_CACHED          probe fails? -> ERR_MODEL_NOT_CACHED (says why)
    HEAD the resolve URL (size, sha256 ETag, commit; retried)    404 -> ERR_MODEL_NOT_FOUND
    disk space for the rest of the file and the first load's weights cache -> ERR_DISK_SPACE
    GET the bytes after the partial's (Range), retried with backoff -> ERR_MODEL_DOWNLOAD
    sha256 of the whole file against the ETag; then blobs/<etag> and the snapshot link

Why the GET is ctrlspeak's: huggingface_hub 2.x downloads into a temp file unique to each
call and deletes it when the call fails, so an interrupted 2.5 GB download starts again at
zero. Here the partial is ``blobs/<etag>.incomplete`` (the name older huggingface_hub used
for resuming), kept across failures, Ctrl+C and crashes, and named by the file's checksum,
so bytes of two versions never mix. Once the blob is complete, ``hf_hub_download`` finds
it and only writes the cache's ref and snapshot link (one HEAD, no bytes), so the cache
layout stays the library's. A lock makes a second process (the CLI while the daemon
downloads) wait for the first one, showing the same bytes arrive.
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import filelock

from ctrlspeak import __version__, errors
from ctrlspeak.supervision.backoff import Backoff
from ctrlspeak.ipc import ModelRef, Progress
from ctrlspeak.models import cache, hub, registry
from ctrlspeak.transfer import human_bytes, human_duration

log = logging.getLogger(__name__)

ProgressSink = Callable[[Progress], None]
T = TypeVar("T")
#: attempts in a row that bring no new byte before giving up (waits 1+2+4+8+16 s between)
MAX_TRIES = 6
#: a server's Retry-After is honoured up to this
MAX_RETRY_AFTER_S = 60.0
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_EMIT_EVERY_S = 0.1


def is_offline(config_offline: bool) -> bool:
    """The config's ``offline``, ``HF_HUB_OFFLINE`` now, or huggingface_hub's own offline mode
    (read when it was imported; its client refuses every request then)."""
    from huggingface_hub import constants

    env = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")
    return config_offline or env or constants.is_offline_mode()


def hub_reachable(timeout: float = hub.PROBE_TIMEOUT_S) -> bool:
    """Whether the hub answers (through the proxy, if one is set): milliseconds when it
    does not, rather than huggingface_hub's retry schedule."""
    return hub.probe(timeout=timeout) is None


# -- disk space ------------------------------------------------------------------------
@dataclass(frozen=True)
class DiskNeed:
    path: Path
    bytes: int
    what: str


def weights_cache_bytes(size: int, int8: bool) -> int:
    """What the first load adds to the weights cache (models/fastload.py): weights.pt, about
    the model's size (tiny-en: 0.98x), and with an int8 encoder weights-int8.pt (tiny-en:
    0.36x; counted as half the model, to be safe)."""
    return size + (size // 2 if int8 else 0)


def _existing(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return path


def check_disk(needs: list[DiskNeed], free: Callable[[Path], int] | None = None) -> None:
    """Raise ERR_DISK_SPACE when what goes on one disk exceeds that disk's free space."""
    free = free or (lambda p: shutil.disk_usage(p).free)
    by_disk: dict[int, list[DiskNeed]] = {}
    for need in needs:
        if need.bytes > 0:
            by_disk.setdefault(os.stat(_existing(need.path)).st_dev, []).append(need)
    for group in by_disk.values():
        total = sum(n.bytes for n in group)
        available = free(_existing(group[0].path))
        if total > available:
            parts = " + ".join(f"{human_bytes(n.bytes)} {n.what}" for n in group)
            raise errors.DiskSpaceError(
                f"not enough disk space: {parts} need {human_bytes(total)} on {_existing(group[0].path)}, "
                f"which has {human_bytes(available)} free",
                hint="free some space, or put the cache on a bigger disk (HF_HUB_CACHE=/path, or "
                     "weights_cache = false in the config), then run the download again")


# -- the download ----------------------------------------------------------------------
class _Reporter:
    """Turns byte counts into Progress for the caller, at most every _EMIT_EVERY_S."""

    def __init__(self, ref: ModelRef, sink: ProgressSink | None, clock: Callable[[], float]) -> None:
        self.ref, self.sink, self.clock = ref, sink, clock
        self.total: int | None = None
        self.done = 0
        self._at = -1e9

    def count(self, done: int, force: bool = False) -> None:
        self.done = done
        now = self.clock()
        if self.sink is None or (not force and now - self._at < _EMIT_EVERY_S):
            return
        self._at = now
        fraction = None if not self.total else min(1.0, done / self.total)
        self.sink(Progress("download", fraction, f"downloading {self.ref.name}", done=float(done),
                           total=None if self.total is None else float(self.total), unit="B"))

    def note(self, message: str, retry_in_s: float | None = None) -> None:
        if self.sink is None:
            return
        fraction = None if not self.total else min(1.0, self.done / self.total)
        self.sink(Progress("download", fraction, message, done=float(self.done),
                           total=None if self.total is None else float(self.total), unit="B",
                           retry_in_s=retry_in_s))


def _kept(reporter: _Reporter) -> str:
    if not reporter.done:
        return ""
    of = f" of {human_bytes(reporter.total)}" if reporter.total else ""
    return f"; the {human_bytes(reporter.done)}{of} fetched so far are kept"


def _retrying(what: Callable[[], T], reporter: _Reporter, progress_mark: Callable[[], int],
              sleep: Callable[[float], None]) -> T:
    """Run ``what`` until it stops raising Transient; an attempt that brought bytes resets the count."""
    backoff = Backoff(1.0, 30.0)
    failures = 0
    while True:
        before = progress_mark()
        try:
            return what()
        except hub.Transient as exc:
            if progress_mark() > before:
                failures = 0
                backoff.reset()
            failures += 1
            if failures >= MAX_TRIES:
                raise errors.ModelDownloadError(
                    f"downloading {reporter.ref.name} failed: {exc.reason} ({failures} tries in a row){_kept(reporter)}",
                    hint=f"check the network, then run `ctrlspeak models download {reporter.ref.name}`: "
                         "it continues where it stopped") from exc
            wait = backoff.next() if exc.retry_after is None else min(exc.retry_after, MAX_RETRY_AFTER_S)
            log.info("downloading %s: %s; retrying in %.0f s", reporter.ref.name, exc.reason, wait)
            reporter.note(f"{exc.reason}; retrying in {human_duration(wait)} (try {failures + 1} of {MAX_TRIES})",
                          retry_in_s=wait)
            sleep(wait)


def _verify(ref: ModelRef, remote: hub.RemoteFile, partial: Path, reporter: _Reporter) -> None:
    """The whole file against the hub's size and sha256 ETag; a mismatch discards it."""
    size = partial.stat().st_size
    problem = None
    if remote.size is not None and size != remote.size:
        problem = f"it has {size} bytes, the hub announced {remote.size}"
    elif _SHA256.match(remote.etag):
        reporter.note(f"checking {ref.name} ({human_bytes(size)}, sha256)")
        with open(partial, "rb") as f:
            digest = hashlib.file_digest(f, "sha256").hexdigest()
        if digest != remote.etag:
            problem = f"its sha256 is {digest[:12]}..., the hub's is {remote.etag[:12]}..."
    if problem:
        partial.unlink(missing_ok=True)
        raise errors.ModelDownloadError(
            f"the download of {ref.name} is damaged ({problem}); it was discarded",
            hint=f"run `ctrlspeak models download {ref.name}` again")


def _fetch_blob(ref: ModelRef, remote: hub.RemoteFile, blob: Path, reporter: _Reporter,
                sleep: Callable[[float], None]) -> None:
    partial = cache.partial_path(blob)
    if partial.exists() and remote.size is not None and partial.stat().st_size > remote.size:
        partial.unlink()  # longer than the file: not its start
    have = partial.stat().st_size if partial.exists() else 0
    reporter.count(have, force=True)
    if remote.size is None or have < remote.size:
        if have:
            log.info("continuing %s at %s", ref.name, human_bytes(have))
        try:
            _retrying(lambda: hub.fetch(ref, remote, partial, reporter.count), reporter,
                      lambda: partial.stat().st_size if partial.exists() else 0, sleep)
        except hub.CorruptPartial as exc:
            partial.unlink(missing_ok=True)
            raise errors.ModelDownloadError(
                f"downloading {ref.name} failed: {exc}; the partial download was discarded",
                hint=f"run `ctrlspeak models download {ref.name}` again") from exc
        reporter.count(partial.stat().st_size, force=True)
    _verify(ref, remote, partial, reporter)
    os.replace(partial, blob)


def _wait_for_other(ref: ModelRef, lock: filelock.FileLock, blob: Path, reporter: _Reporter) -> None:
    """Another process holds the download: show its bytes arriving until it lets go."""
    partial = cache.partial_path(blob)
    reporter.note(f"another ctrlspeak process is downloading {ref.name}; waiting for it")
    while True:
        try:
            lock.acquire(timeout=0.5)
            return
        except filelock.Timeout:
            if partial.exists():
                reporter.count(partial.stat().st_size)


def _link(ref: ModelRef, cache_dir: str | None, url_base: str) -> Path:
    """Let huggingface_hub record the finished blob in its cache layout (no bytes move)."""
    from huggingface_hub import errors as hf_errors
    from huggingface_hub import hf_hub_download

    try:
        return Path(hf_hub_download(repo_id=ref.hf_id, filename=ref.filename, cache_dir=cache_dir,
                                    endpoint=url_base, library_name="ctrlspeak", library_version=__version__))
    except (OSError, hf_errors.HfHubHTTPError) as exc:
        raise errors.ModelDownloadError(
            f"{ref.name} was downloaded, but the hub stopped answering before it could be recorded in "
            f"the cache ({type(exc).__name__})",
            hint=f"run `ctrlspeak models download {ref.name}` again: nothing is fetched twice") from exc


def download(
    ref: ModelRef,
    *,
    cache_dir: str | None = None,
    force: bool = False,
    offline: bool = False,
    on_progress: ProgressSink | None = None,
    endpoint: str | None = None,
    weights_dir: str | None = None,
    int8: bool = False,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Path:
    """Return the local path of ``ref``'s ``.nemo``, downloading it if needed.

    ``weights_dir``/``int8`` say what the first load will add to the weights cache (it is
    counted in the disk-space check). ``sleep`` and ``clock`` are for tests.
    """
    if ref.source == "file":
        found = registry.cached_path(ref)
        if found is None:
            raise errors.ModelNotFound(f"no model file at {ref.path!r}")
        return found
    if not force:
        found = registry.cached_path(ref, cache_dir)
        if found is not None:
            return found
    if is_offline(offline):
        raise registry.not_cached_error(ref)
    url_base = endpoint or hub.endpoint()
    why = hub.probe(url_base)
    if why is not None:
        raise registry.not_cached_error(ref, f"and the Hugging Face hub ({url_base}) cannot be reached: {why}")

    reporter = _Reporter(ref, on_progress, clock)
    remote = _retrying(lambda: hub.remote_file(ref, url_base), reporter, lambda: 0, sleep)
    reporter.total = remote.size
    blob = cache.blob_path(ref, cache_dir, remote.etag)
    blob.parent.mkdir(parents=True, exist_ok=True)
    lock = filelock.FileLock(str(cache.lock_path(ref, cache_dir, remote.etag)))
    try:
        lock.acquire(timeout=0)
    except filelock.Timeout:
        _wait_for_other(ref, lock, blob, reporter)
    try:
        if force:
            blob.unlink(missing_ok=True)
            cache.partial_path(blob).unlink(missing_ok=True)
        if not blob.exists():
            if remote.size is not None:
                partial = cache.partial_path(blob)
                have = partial.stat().st_size if partial.exists() else 0
                needs = [DiskNeed(cache.hf_root(cache_dir), max(0, remote.size - have), f"for the rest of {ref.name}"
                                  if have else f"for {ref.name}")]
                if weights_dir:
                    needs.append(DiskNeed(Path(weights_dir), weights_cache_bytes(remote.size, int8),
                                          "for its fast-start copy"))
                check_disk(needs)
            _fetch_blob(ref, remote, blob, reporter, sleep)
    finally:
        lock.release()
    return _link(ref, cache_dir, url_base)
