"""What a model takes on disk, and freeing it: the Hugging Face cache entry, partial
downloads, and ctrlspeak's own weights cache (models/fastload.py) made from those files.

Reads the disk only; no torch, no network. The HF cache layout is huggingface_hub's::

    <hf cache>/models--org--name/blobs/<etag>              the file's bytes
                                 blobs/<etag>.incomplete   a partial download (models/download.py)
                                 snapshots/<commit>/<file> -> ../../blobs/<etag>
                                 refs/main                 the commit
    <hf cache>/.locks/models--org--name/<etag>.ctrlspeak.lock

A weights-cache entry records the real path of the file it was built from (its
``source.json``), so the entries of a repo are those whose source lies in its blobs.
"""
from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ctrlspeak.ipc import ModelRef

#: the file in each weights-cache entry that names its source (models/fastload.py writes it)
WEIGHTS_SOURCE = "source.json"
PARTIAL_SUFFIX = ".incomplete"


def hf_root(cache_dir: str | None) -> Path:
    from huggingface_hub import constants

    return Path(cache_dir or constants.HF_HUB_CACHE)


def repo_dir(ref: ModelRef, cache_dir: str | None) -> Path:
    from huggingface_hub.file_download import repo_folder_name

    assert ref.hf_id
    return hf_root(cache_dir) / repo_folder_name(repo_id=ref.hf_id, repo_type="model")


def blob_path(ref: ModelRef, cache_dir: str | None, etag: str) -> Path:
    return repo_dir(ref, cache_dir) / "blobs" / etag


def partial_path(blob: Path) -> Path:
    return blob.with_name(blob.name + PARTIAL_SUFFIX)


def lock_path(ref: ModelRef, cache_dir: str | None, etag: str) -> Path:
    path = hf_root(cache_dir) / ".locks" / repo_dir(ref, cache_dir).name / f"{etag}.ctrlspeak.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


@dataclass(frozen=True)
class Usage:
    #: complete files in the HF cache (or the model file itself, for a path or bundled model)
    download_bytes: int = 0
    partial_bytes: int = 0
    weights_bytes: int = 0

    @property
    def total(self) -> int:
        return self.download_bytes + self.partial_bytes + self.weights_bytes


def _tree_bytes(path: Path) -> int:
    """Bytes of the regular files under ``path`` (links not followed: a blob counts once)."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                st = os.lstat(os.path.join(root, name))
            except OSError:
                continue
            if not os.path.islink(os.path.join(root, name)):
                total += st.st_size
    return total


def _weights_entries(weights_dir: str | None, belongs: Callable[[str], bool]) -> list[Path]:
    if not weights_dir or not os.path.isdir(weights_dir):
        return []
    found = []
    for entry in Path(weights_dir).iterdir():
        try:
            source = json.loads((entry / WEIGHTS_SOURCE).read_text(encoding="utf-8")).get("path", "")
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(source, str) and belongs(source):
            found.append(entry)
    return found


def _parts(ref: ModelRef, cache_dir: str | None, weights_dir: str | None) -> tuple[list[Path], list[Path], list[Path]]:
    """(complete files, partials, weights entries) of ``ref``."""
    if ref.source == "file":
        path = Path(ref.path or "")
        real = os.path.realpath(path)
        return ([path] if path.is_file() else []), [], _weights_entries(weights_dir, lambda s: s == real)
    repo = repo_dir(ref, cache_dir)
    blobs = sorted((repo / "blobs").glob("*")) if (repo / "blobs").is_dir() else []
    complete = [b for b in blobs if b.is_file() and not b.name.endswith(PARTIAL_SUFFIX)]
    partials = [b for b in blobs if b.is_file() and b.name.endswith(PARTIAL_SUFFIX)]
    prefix = os.path.realpath(repo) + os.sep
    return complete, partials, _weights_entries(weights_dir, lambda s: s.startswith(prefix))


def usage(ref: ModelRef, cache_dir: str | None, weights_dir: str | None) -> Usage:
    complete, partials, entries = _parts(ref, cache_dir, weights_dir)
    return Usage(sum(p.stat().st_size for p in complete), sum(p.stat().st_size for p in partials),
                 sum(_tree_bytes(e) for e in entries))


def remove(ref: ModelRef, cache_dir: str | None, weights_dir: str | None) -> Usage:
    """Delete ``ref``'s HF cache entry (partials included) and its weights-cache entries;
    return what was freed. A path or bundled model keeps its file: only its weights go."""
    freed = usage(ref, cache_dir, weights_dir)
    _complete, _partials, entries = _parts(ref, cache_dir, weights_dir)
    for entry in entries:
        shutil.rmtree(entry)
    if ref.source == "file":
        return Usage(0, 0, freed.weights_bytes)
    repo = repo_dir(ref, cache_dir)
    if repo.exists():
        shutil.rmtree(repo)
    locks = hf_root(cache_dir) / ".locks" / repo.name
    if locks.exists():
        shutil.rmtree(locks, ignore_errors=True)  # lock files only: nothing to report
    return freed
