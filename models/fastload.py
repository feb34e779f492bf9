"""Fast restore of a ``.nemo`` file through a per-model weights cache. Worker-only (imports torch).

``ASRModel.restore_from`` pays, on every start (0.6B Parakeet shape, 2-core CPU, shared notes):
untarring 2.5 GB into $TMPDIR (3.6 s), random initialisation of weights that are overwritten
right after (13 s), and ``torch.load`` of the whole checkpoint into fresh memory (8.3 s, and a
5.3 GiB RSS peak: the random weights and the loaded ones are alive together).

The first restore of a file builds a cache entry (kept under the user's cache dir)::

    <root>/<key>/            key = sha256(cache format, real path, size, mtime_ns, torch, nemo)
        model_config.yaml    the small members of the .nemo (tokenizer files, vocabularies...),
        ...                  extracted once
        weights.pt           the state dict, re-saved uncompressed for ``torch.load(mmap=True)``
        weights-int8.pt      the state dict with an int8 encoder (models/int8.py), written the
                             first time the model is loaded with ``quantize = "int8"``
        source.json          what the key was made of, checked again on load

Later starts restore from the entry: NeMo's own connector with ``model_extracted_dir`` (no
untar), the model built with ``torch.nn.init`` turned off (no random init), and the weights
memory-mapped and *assigned* to the modules (no copy; pages come from the page cache as the
warm-up touches them). With an int8 encoder the encoder's linears are built as empty int8
layers and filled from ``weights-int8.pt``: no quantisation at start, and the float weights of
those layers are never read. A changed source file changes the key, so a stale entry is never used;
older entries for the same file are removed when a new one is written. Any failure to build or
read the cache falls back to the plain ``restore_from`` and is logged, never raised.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import torch

from ctrlspeak.models import int8
from ctrlspeak.models.cache import WEIGHTS_SOURCE

log = logging.getLogger(__name__)

CACHE_FORMAT = 1
WEIGHTS = "weights.pt"
WEIGHTS_INT8 = "weights-int8.pt"
SOURCE = WEIGHTS_SOURCE
_INIT_FUNCTIONS = (
    "uniform_", "normal_", "trunc_normal_", "constant_", "ones_", "zeros_", "eye_", "dirac_",
    "xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_", "orthogonal_",
    "sparse_",
)


def source_identity(path: str | os.PathLike[str]) -> dict[str, Any]:
    import nemo

    real = os.path.realpath(path)
    st = os.stat(real)
    return {"format": CACHE_FORMAT, "path": real, "size": st.st_size, "mtime_ns": st.st_mtime_ns,
            "torch": torch.__version__, "nemo": nemo.__version__}


def entry_dir(root: str | os.PathLike[str], identity: dict[str, Any]) -> Path:
    key = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:32]
    return Path(root) / key


def valid_entry(entry: Path, identity: dict[str, Any]) -> bool:
    try:
        stored = json.loads((entry / SOURCE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return stored == identity and (entry / WEIGHTS).is_file()


@contextlib.contextmanager
def no_weight_init() -> Iterator[None]:
    """Module constructors skip ``torch.nn.init`` (the weights are replaced right after).

    Patches the ``torch.nn.init`` functions for the duration of model construction only; the
    worker builds one model at a time on its main thread.
    """
    init = torch.nn.init
    saved = {name: getattr(init, name) for name in _INIT_FUNCTIONS if hasattr(init, name)}

    def skip(tensor: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        return tensor

    try:
        for name in saved:
            setattr(init, name, skip)
        yield
    finally:
        for name, fn in saved.items():
            setattr(init, name, fn)


def load_weights(path: Path, device: torch.device, packed: bool = False) -> dict[str, Any]:
    """The entry's state dict; on CPU memory-mapped and paged in (a C++ loop, no GIL held).

    With ``packed`` (an int8 entry) the int8 linears' weights are packed here, which reads them.
    """
    if device.type != "cpu":
        return torch.load(path, map_location=device, weights_only=True)
    state = torch.load(path, map_location="cpu", mmap=True, weights_only=True)
    with torch.inference_mode():
        for tensor in state.values():
            if isinstance(tensor, torch.Tensor) and not tensor.is_quantized and tensor.numel():
                tensor.reshape(-1)[::1024].sum()  # one read per 4 KiB page
    return int8.prepack(state) if packed else state


def _connector_class() -> type:
    from nemo.core.connectors.save_restore_connector import SaveRestoreConnector

    class CachedConnector(SaveRestoreConnector):
        """NeMo's connector, reading an extracted cache entry with mmap'd weights.

        The weights are mapped and paged in on a helper thread while the model is being
        constructed on this one (construction is Python, mostly OmegaConf; paging is not).
        """

        def __init__(self, entry: Path, device: torch.device, from_int8: bool = False) -> None:
            super().__init__()
            self.model_extracted_dir = str(entry)
            self.model_weights_ckpt = WEIGHTS_INT8 if from_int8 else WEIGHTS
            self._int8 = from_int8
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="ctrlspeak-weights")
            self._weights = self._pool.submit(load_weights, entry / self.model_weights_ckpt, device, from_int8)
            self._pool.shutdown(wait=False)

        def load_config_and_state_dict(self, *args: Any, **kwargs: Any) -> Any:
            with no_weight_init():
                return super().load_config_and_state_dict(*args, **kwargs)

        def _load_state_dict_from_disk(self, model_weights: str, map_location: Any = "cpu") -> Any:
            return self._weights.result()

        def load_instance_with_state_dict(self, instance: Any, state_dict: Any, strict: bool) -> None:
            if self._int8:
                int8.empty_int8_encoder(instance)
                int8.load_int8_state(instance, state_dict, strict=strict)
            else:
                instance.load_state_dict(state_dict, strict=strict, assign=True)
            instance._set_model_restore_state(is_being_restored=False)

    return CachedConnector


def _write_entry(path: str, model: Any, root: Path, identity: dict[str, Any]) -> Path:
    """Build the entry in a temp dir beside it, then rename it into place (atomic)."""
    entry = entry_dir(root, identity)
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=root))
    try:
        with tarfile.open(path, "r:*") as tar:
            small = [m for m in tar.getmembers()
                     if m.isfile() and not os.path.basename(m.name).endswith((".ckpt", ".pt"))]
            tar.extractall(tmp, members=small, filter="data")
        state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
        torch.save(state, tmp / WEIGHTS)
        (tmp / SOURCE).write_text(json.dumps(identity, sort_keys=True), encoding="utf-8")
        if entry.exists():
            shutil.rmtree(entry)
        os.replace(tmp, entry)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _remove_stale(root, identity, keep=entry)
    return entry


def _remove_stale(root: Path, identity: dict[str, Any], keep: Path) -> None:
    for other in root.iterdir():
        if other == keep or not other.is_dir():
            continue
        try:
            stored = json.loads((other / SOURCE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if stored.get("path") == identity["path"]:
            shutil.rmtree(other, ignore_errors=True)


def _write_int8(entry: Path, model: Any) -> None:
    """Add the int8 state dict to an entry (written beside, then renamed into place)."""
    tmp = entry / f".{WEIGHTS_INT8}.{os.getpid()}.tmp"
    try:
        torch.save(model.state_dict(), tmp)
        os.replace(tmp, entry / WEIGHTS_INT8)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def restore_cached(path: str, device: torch.device, root: str | os.PathLike[str],
                   int8_encoder: bool = False) -> tuple[Any, bool]:
    """Restore ``path`` (with an int8 encoder if asked); return (model, whether the cache served it).

    A usable entry serves the restore; otherwise the plain path runs and an entry is written
    for next time. The int8 weights are added to the entry the first time they are asked for.
    Errors in the cache itself fall back to the plain path.
    """
    from nemo.collections.asr.models import ASRModel

    identity = source_identity(path)
    entry = entry_dir(root, identity)
    written: Path | None = None
    if valid_entry(entry, identity):
        from_int8 = int8_encoder and (entry / WEIGHTS_INT8).is_file()
        try:
            model = ASRModel.restore_from(restore_path=os.path.abspath(path), map_location=device,
                                          save_restore_connector=_connector_class()(entry, device, from_int8))
        except Exception as exc:  # a damaged entry: rebuild it below
            log.warning("weights cache %s unusable (%s: %s); restoring %s the plain way",
                        entry, type(exc).__name__, exc, path)
            shutil.rmtree(entry, ignore_errors=True)
        else:
            if int8_encoder and not from_int8:
                _quantize_and_keep(model, entry)
            return model, True
    model = ASRModel.restore_from(restore_path=os.path.abspath(path), map_location=device)
    try:
        written = _write_entry(path, model, Path(root), identity)
    except Exception as exc:
        log.warning("could not write the weights cache under %s (%s: %s); next start restores "
                    "the plain way", root, type(exc).__name__, exc)
    if int8_encoder:
        _quantize_and_keep(model, written)
    return model, False


def _quantize_and_keep(model: Any, entry: Path | None) -> None:
    int8.quantize_encoder(model)
    if entry is None:
        return
    try:
        _write_int8(entry, model)
    except Exception as exc:
        log.warning("could not add the int8 weights to the cache %s (%s: %s); next start quantises "
                    "again", entry, type(exc).__name__, exc)
