"""One frozen configuration object, built once.

Precedence: defaults < config file (TOML in the XDG config dir, Application Support on
macOS) < ``CTRLSPEAK_*`` environment variables < command-line flags. The result is
passed explicitly to whoever needs it; there is no module-level mutable state.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from ctrlspeak import errors

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

log = logging.getLogger(__name__)

ENV_PREFIX = "CTRLSPEAK_"
COMPUTE_DEVICES = ("auto", "cpu", "cuda", "mps")


def default_threads() -> int:
    """Physical cores, at most 4: more threads than that slow a small encoder down."""
    import psutil

    cores = psutil.cpu_count(logical=False) or os.cpu_count() or 1
    return max(1, min(4, cores))


@dataclass(frozen=True)
class Config:
    #: registry alias, Hugging Face id, or path to a .nemo file
    model: str = "parakeet"
    #: auto picks CUDA, then Apple MPS, then CPU
    compute_device: str = "auto"
    #: torch threads in the worker; 0 means physical cores, at most 4
    threads: int = 0
    #: source language (Canary and multilingual Parakeet); None = model default
    language: str | None = None
    #: Canary translation target; None = same as the source language
    target_language: str | None = None
    punctuation: bool = True
    #: never try the network, even for a model that is not cached
    offline: bool = False
    #: Hugging Face cache dir; None = huggingface_hub's default (HF_HUB_CACHE)
    hf_cache_dir: str | None = None
    #: keep a fast-start copy of each restored model (no untar, no random init, mmap'd weights;
    #: costs disk about the size of the model); see models/fastload.py
    weights_cache: bool = True
    #: PyTorch scaled-dot-product attention in the encoder: the same text, a faster encoder
    #: (measured by scripts/bench_transcribe.py; same held-out transcripts for tiny-en)
    sdpa: bool = True
    #: "int8" (default): dynamic int8 quantisation of the encoder's linear layers, on CPU only
    #: (about 3.5x faster encoder, less memory; the text can change slightly: README "Encoder
    #: speed" has the measured effect); "off": float32 as trained
    quantize: str = "int8"
    log_level: str = "WARNING"

    # -- the daemon ----------------------------------------------------------------
    #: "tap" (N taps of hotkey_key toggle recording) or "hold" (hold to talk)
    hotkey_mode: str = "tap"
    hotkey_key: str = "ctrl"
    hotkey_taps: int = 3
    #: most seconds between one tap's release and the next press
    hotkey_window_s: float = 0.5
    #: microphone: None = system default; an index or part of a name (`ctrlspeak devices`)
    input_device: str | None = None
    #: a recording ends by itself after this long (the audio is kept)
    max_record_s: float = 600.0
    #: audio kept from just before the recording starts
    preroll_s: float = 0.5
    #: a pause this long lets the daemon send what was said so far to the worker
    min_silence_s: float = 0.5
    max_segment_s: float = 20.0
    sounds: bool = True
    #: "paste" (clipboard + Ctrl+V), "type" (keystrokes) or "stdout"
    output: str = "paste"
    restore_clipboard: bool = True
    history: bool = True
    #: desktop notifications: "off", "errors" or "normal"
    notify: str = "normal"
    tray: bool = True
    #: write every recording to the audio journal while it is made (crash safety)
    journal: bool = True
    #: keep this many recordings after success (for `ctrlspeak retry`); 0 = delete them
    keep_recordings: int = 0
    #: a request is a hang after this many seconds plus 6x its expected compute time
    hang_margin_s: float = 20.0
    #: stop the worker (freeing the model's memory) after this many idle minutes; it reloads
    #: at the next dictation, which records at once meanwhile; 0 = keep it loaded
    keep_alive_minutes: float = 0.0

    def __post_init__(self) -> None:
        if self.compute_device not in COMPUTE_DEVICES:
            raise errors.ConfigError(
                f"compute_device must be one of {', '.join(COMPUTE_DEVICES)}, not {self.compute_device!r}"
            )
        if self.threads < 0:
            raise errors.ConfigError(f"threads must be 0 (auto) or positive, not {self.threads}")
        choices = {"hotkey_mode": ("tap", "hold"), "output": ("paste", "type", "stdout"), "quantize": ("off", "int8"),
                   "notify": ("off", "errors", "normal")}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise errors.ConfigError(f"{name} must be one of {', '.join(allowed)}, not {getattr(self, name)!r}")
        if not 1 <= self.hotkey_taps <= 5:
            raise errors.ConfigError(f"hotkey_taps must be 1 to 5, not {self.hotkey_taps}")
        for name in ("hotkey_window_s", "max_record_s", "min_silence_s", "max_segment_s"):
            if getattr(self, name) <= 0:
                raise errors.ConfigError(f"{name} must be positive, not {getattr(self, name)}")
        if self.keep_recordings < 0:
            raise errors.ConfigError(f"keep_recordings must be 0 or more, not {self.keep_recordings}")
        if self.preroll_s < 0:
            raise errors.ConfigError(f"preroll_s must be 0 or more, not {self.preroll_s}")
        if not 0 <= self.keep_alive_minutes < math.inf:  # also refuses NaN
            raise errors.ConfigError(
                f"keep_alive_minutes must be 0 (never unload) or a positive number, not {self.keep_alive_minutes}")

    @property
    def effective_threads(self) -> int:
        return self.threads or default_threads()

    @property
    def weights_cache_dir(self) -> str | None:
        if not self.weights_cache:
            return None
        from platformdirs import user_cache_dir

        return str(Path(user_cache_dir("ctrlspeak", appauthor=False)) / "weights")

    def replace(self, **changes: Any) -> Config:
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


def config_path(env: Mapping[str, str] | None = None) -> Path:
    override = (os.environ if env is None else env).get(ENV_PREFIX + "CONFIG")
    if override:
        return Path(override)
    from platformdirs import user_config_dir

    return Path(user_config_dir("ctrlspeak", appauthor=False)) / "config.toml"


def _field_types() -> dict[str, Any]:
    return {f.name: f.type for f in fields(Config)}


def _coerce(key: str, value: Any, source: str) -> Any:
    kind = _field_types()[key]
    try:
        if "bool" in kind:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if "int" in kind:
            if isinstance(value, bool):
                raise ValueError(value)
            return int(value)
        if "float" in kind:
            if isinstance(value, bool):
                raise ValueError(value)
            return float(value)
        if "None" in kind and (value is None or str(value).strip() == ""):
            return None
        if isinstance(value, (dict, list)):
            raise ValueError(value)
        return str(value)
    except ValueError:
        raise errors.ConfigError(f"{source}: {key} has an invalid value {value!r} (expected {kind})") from None


def read_file(path: Path) -> dict[str, Any]:
    """The config file's settings; a missing file is empty, a broken one an ERR_CONFIG."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise errors.ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise errors.ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
    known = _field_types()
    values: dict[str, Any] = {}
    for key, value in data.items():
        name = key.replace("-", "_")
        if name not in known:
            log.warning("config file %s: unknown key %r ignored", path, key)
            continue
        values[name] = _coerce(name, value, str(path))
    return values


def from_env(env: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name in _field_types():
        raw = env.get(ENV_PREFIX + name.upper())
        if raw is not None:
            values[name] = _coerce(name, raw, ENV_PREFIX + name.upper())
    return values


def load(
    flags: Mapping[str, Any] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    path: Path | None = None,
) -> Config:
    """Build the one Config. ``flags`` with value None are treated as not given."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    values.update(read_file(path or config_path(env)))
    values.update(from_env(env))
    values.update({k: v for k, v in (flags or {}).items() if v is not None})
    return Config(**values)
