"""Fetching a model's ``.nemo`` into the local Hugging Face cache, with byte progress.

Used by ``ctrlspeak models download`` in the main process and by the worker when a model
is not cached yet. No torch here.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from ctrlspeak import errors
from ctrlspeak.ipc import ModelRef
from ctrlspeak.models import registry

#: called with (bytes done, total bytes or None)
ByteProgress = Callable[[int, "int | None"], None]


class _NullWriter:
    def write(self, _s: str) -> int:
        return 0

    def flush(self) -> None:
        pass


def _bar_class(on_bytes: ByteProgress):
    from tqdm.std import tqdm

    class _ForwardingBar(tqdm):
        """A silent tqdm that forwards its byte count (huggingface_hub drives it)."""

        def __init__(self, *args, **kwargs):
            kwargs["file"] = _NullWriter()
            kwargs.pop("name", None)
            super().__init__(*args, **kwargs)
            on_bytes(int(self.n), None if self.total is None else int(self.total))

        def update(self, n: float | None = 1):
            shown = super().update(n)
            on_bytes(int(self.n), None if self.total is None else int(self.total))
            return shown

    return _ForwardingBar


def is_offline(config_offline: bool) -> bool:
    return config_offline or os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def hub_reachable(timeout: float = 3.0) -> bool:
    """A quick TCP probe of the hub, so an offline machine fails in milliseconds rather
    than after huggingface_hub's retry schedule (about 25 s)."""
    import socket
    from urllib.parse import urlsplit

    from huggingface_hub import constants

    url = urlsplit(constants.ENDPOINT)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


def download(
    ref: ModelRef,
    *,
    cache_dir: str | None = None,
    force: bool = False,
    offline: bool = False,
    on_bytes: ByteProgress | None = None,
) -> Path:
    """Return the local path of ``ref``'s ``.nemo``, downloading it if needed."""
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
    if not hub_reachable():
        raise registry.not_cached_error(ref, "and the Hugging Face hub cannot be reached")

    from huggingface_hub import hf_hub_download
    from huggingface_hub import errors as hf_errors

    kwargs = {}
    if on_bytes is not None:
        kwargs["tqdm_class"] = _bar_class(on_bytes)
    try:
        path = hf_hub_download(
            repo_id=ref.hf_id, filename=ref.filename, cache_dir=cache_dir, force_download=force, **kwargs
        )
    except (hf_errors.RepositoryNotFoundError, hf_errors.GatedRepoError) as exc:
        raise errors.ModelNotFound(
            f"Hugging Face has no accessible repo {ref.hf_id!r} ({type(exc).__name__})"
        ) from exc
    except hf_errors.EntryNotFoundError as exc:
        if isinstance(exc, hf_errors.LocalEntryNotFoundError):
            # raised when the hub cannot be reached and the file is not cached
            raise registry.not_cached_error(ref, "and the Hugging Face hub cannot be reached") from exc
        raise errors.ModelNotFound(f"repo {ref.hf_id!r} has no file {ref.filename!r}") from exc
    except hf_errors.OfflineModeIsEnabled as exc:
        raise registry.not_cached_error(ref) from exc
    except (OSError, hf_errors.HfHubHTTPError) as exc:
        raise errors.ModelDownloadError(f"downloading {ref.hf_id!r} failed: {exc}") from exc
    return Path(path)
