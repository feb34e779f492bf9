"""The model registry: aliases, name resolution and the local cache check.

Imported by the daemon side, so it never imports torch or NeMo. Checking the cache never
touches the network (``huggingface_hub.try_to_load_from_cache`` reads the disk only).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from ctrlspeak import errors
from ctrlspeak.ipc import ModelRef

EU25 = (
    "bg", "cs", "da", "de", "el", "en", "es", "et", "fi", "fr", "hr", "hu", "it",
    "lt", "lv", "mt", "nl", "pl", "pt", "ro", "ru", "sk", "sl", "sv", "uk",
)

DEFAULT_MODEL = "parakeet"
BUNDLED_DIR = Path(__file__).resolve().parent / "data"
#: a held-out sentence spoken by espeak-ng, never trained on (its words: sample-en.txt)
BUNDLED_SAMPLE = BUNDLED_DIR / "sample-en.wav"


@dataclass(frozen=True)
class ModelSpec:
    alias: str
    #: Hugging Face repo id, or None for a model shipped inside the package
    hf_id: str | None
    #: "tdt", "rnnt", "ctc" (Parakeet) or "aed" (Canary)
    family: str
    languages: tuple[str, ...]
    description: str
    bundled_file: str | None = None

    @property
    def filename(self) -> str | None:
        # NeMo's own from_pretrained looks for "<repo name>.nemo" in the repo
        return None if self.hf_id is None else self.hf_id.split("/", 1)[1] + ".nemo"

    @property
    def display_id(self) -> str:
        return self.hf_id or f"bundled:{self.bundled_file}"


REGISTRY: tuple[ModelSpec, ...] = (
    ModelSpec("parakeet", "nvidia/parakeet-tdt-0.6b-v3", "tdt", EU25,
              "Parakeet TDT 0.6B v3: fast, accurate, 25 European languages (default)"),
    ModelSpec("parakeet-v2", "nvidia/parakeet-tdt-0.6b-v2", "tdt", ("en",),
              "Parakeet TDT 0.6B v2: English, punctuation and capitals"),
    ModelSpec("parakeet-1.1b", "nvidia/parakeet-tdt-1.1b", "tdt", ("en",),
              "Parakeet TDT 1.1B: English, larger and slower"),
    ModelSpec("parakeet-ctc", "nvidia/parakeet-ctc-0.6b", "ctc", ("en",),
              "Parakeet CTC 0.6B: English, CTC decoding"),
    ModelSpec("canary", "nvidia/canary-1b-flash", "aed", ("en", "de", "es", "fr"),
              "Canary 1B flash: transcription and translation en/de/es/fr"),
    ModelSpec("canary-180m", "nvidia/canary-180m-flash", "aed", ("en", "de", "es", "fr"),
              "Canary 180M flash: small multilingual transcription and translation"),
    ModelSpec("canary-v2", "nvidia/canary-1b-v2", "aed", EU25,
              "Canary 1B v2: 25 European languages, transcription and translation"),
    # cache-aware streaming FastConformers (RNN-T): chunk sizes 80/160/560/1120 ms and
    # (Unified) 160 ms up; here they transcribe whole segments like the others, and live text
    # re-decodes the open one (ctrlspeak.daemon.live_decode)
    ModelSpec("nemotron-streaming", "nvidia/nemotron-speech-streaming-en-0.6b", "rnnt", ("en",),
              "Nemotron Speech streaming 0.6B: English, cache-aware streaming, punctuation and capitals"),
    ModelSpec("parakeet-unified", "nvidia/parakeet-unified-en-0.6b", "rnnt", ("en",),
              "Parakeet Unified 0.6B: English, one model for offline and streaming, punctuation and capitals"),
    ModelSpec("tiny-en", None, "tdt", ("en",),
              "bundled demo model: synthetic (espeak-ng) English speech over a fixed vocabulary only",
              bundled_file="tiny-en.nemo"),
)

_BY_ALIAS = {spec.alias: spec for spec in REGISTRY}
_HF_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def available_models() -> tuple[str, ...]:
    return tuple(_BY_ALIAS)


def spec_for(alias: str) -> ModelSpec | None:
    return _BY_ALIAS.get(alias)


def bundled_path(spec: ModelSpec) -> Path:
    assert spec.bundled_file is not None
    return BUNDLED_DIR / spec.bundled_file


def _unknown(name: str) -> errors.ModelNotFound:
    return errors.ModelNotFound(
        f"unknown model {_shown(name)}; valid names: {', '.join(available_models())}, "
        "any org/name Hugging Face id, or a path to a .nemo file"
    )


def resolve(name: str) -> ModelRef:
    """Turn an alias, a Hugging Face id or a ``.nemo`` path into a :class:`ModelRef`.

    Raises :class:`~ctrlspeak.errors.ModelNotFound` for anything else. Nothing here
    touches the network.
    """
    name = name.strip()
    spec = _BY_ALIAS.get(name)
    if spec is not None:
        if spec.hf_id is None:
            path = bundled_path(spec)
            if not path.is_file():
                raise errors.ModelNotFound(
                    f"the bundled model {name!r} is missing from this installation ({path})",
                    hint="reinstall ctrlspeak, or rebuild it with scripts/train_tiny_model.py",
                )
            return ModelRef(name=name, source="file", path=str(path), family=spec.family)
        return ModelRef(name=name, source="hf", hf_id=spec.hf_id, filename=spec.filename, family=spec.family)
    looks_like_path = (
        name.endswith(".nemo")
        or name.startswith((".", "~", os.sep))
        or os.path.exists(name)
        or (os.sep in name and not _HF_ID.match(name))
    )
    if looks_like_path:
        return _file_ref(name)
    if _HF_ID.match(name):
        return ModelRef(name=name, source="hf", hf_id=name, filename=name.split("/", 1)[1] + ".nemo")
    raise _unknown(name)


def _file_ref(name: str) -> ModelRef:
    # Every way a path can be unusable is "not found", never a raw error: `~nosuchuser/x`
    # raises RuntimeError, an over-long name OSError(ENAMETOOLONG), a NUL byte ValueError.
    hint = "check the path, or run `ctrlspeak models list` for the named models"
    try:
        path = Path(name).expanduser()
        found = path.is_file()
        resolved = path.resolve() if found else path
    except RuntimeError:
        raise errors.ModelNotFound(f"no model file at {_shown(name)}: cannot expand '~' (no such user)",
                                   hint=hint) from None
    except (OSError, ValueError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not a usable path"
        raise errors.ModelNotFound(f"no model file at {_shown(name)}: {why}", hint=hint) from None
    if not found:
        raise errors.ModelNotFound(f"no model file at {_shown(os.fsdecode(path))}", hint=hint)
    return ModelRef(name=os.fsdecode(path), source="file", path=os.fsdecode(resolved))


def _shown(name: str, limit: int = 120) -> str:
    """A name as an error message shows it: quoted, on one line, and not kilobytes long."""
    text = repr(name)
    return text if len(text) <= limit else f"{text[:limit - 20]}...{text[-16:]} ({len(name)} characters)"


def cached_path(ref: ModelRef, cache_dir: str | None = None) -> Path | None:
    """Where the model's ``.nemo`` is on disk, or None when it must be downloaded first."""
    if ref.source == "file":
        return Path(ref.path) if ref.path and Path(ref.path).is_file() else None
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id=ref.hf_id, filename=ref.filename, cache_dir=cache_dir)
    return Path(found) if isinstance(found, str) and os.path.isfile(found) else None


def not_cached_error(ref: ModelRef, why: str = "and ctrlspeak is offline") -> errors.ModelNotCached:
    return errors.ModelNotCached(
        f"model {ref.name!r} ({ref.hf_id}) is not in the local cache {why}",
        hint=f"fetch it while online with `ctrlspeak models download {ref.name}`",
    )
