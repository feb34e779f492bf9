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
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from ctrlspeak import errors
from ctrlspeak.desktop.chord import chord_problem, parse_table_text
from ctrlspeak.text.profile import CAPITALS, Profile, parse_profiles, parse_words, switch, word_problem

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


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
#: more torch threads than this is a typo, not a machine
MAX_THREADS = 256
_CHOICES: dict[str, tuple[str, ...]] = {
    "compute_device": COMPUTE_DEVICES, "hotkey_mode": ("tap", "hold"),
    "hotkey_backend": ("auto", "x11", "evdev", "compositor", "portal", "none"), "output": ("paste", "type", "stdout"),
    "quantize": ("off", "int8"), "notify": ("off", "errors", "normal"), "auto_capitalize": CAPITALS,
    "trailing_period": CAPITALS,
}
#: seconds (or minutes) that must be a finite number in (low, high]; low itself is allowed
#: where the bool says so. NaN and infinity are refused everywhere: NaN compares false with
#: every bound, so a NaN max_record_s silently disabled the length cap.
_SPANS: dict[str, tuple[float, bool, float]] = {
    "hotkey_window_s": (0.0, False, 5.0),
    "max_record_s": (0.0, False, 24 * 3600.0),
    "preroll_s": (0.0, True, 10.0),
    "min_silence_s": (0.0, False, 60.0),
    "live_interval_s": (0.1, True, 10.0),
    "max_segment_s": (0.0, False, 300.0),
    "hang_margin_s": (0.0, False, 3600.0),
    "keep_alive_minutes": (0.0, True, 7 * 24 * 60.0),
}


def value_problem(name: str, value: Any) -> str | None:
    """What is wrong with ``value`` for the key ``name`` (its meaning, not only its type), or None."""
    if name in _CHOICES and value not in _CHOICES[name]:
        return f"must be one of {', '.join(_CHOICES[name])}, not {value!r}"
    if name == "log_level" and str(value).upper() not in LOG_LEVELS:
        return f"must be one of {', '.join(LOG_LEVELS)}, not {value!r}"
    if name == "threads" and not 0 <= value <= MAX_THREADS:
        return f"must be 0 (physical cores, at most 4) or 1 to {MAX_THREADS}, not {value}"
    if name == "hotkey_taps" and not 1 <= value <= 5:
        return f"must be 1 to 5, not {value}"
    if name == "stream_chunk_ms" and not 0 <= value <= 10_000:
        return f"must be 0 (the model's own pick) or a chunk size in ms the model streams at, not {value}"
    if name == "keep_recordings" and value < 0:
        return f"must be 0 or more, not {value}"
    if name == "paste_chord":
        return _paste_chord_problem(value)
    if name == "words":
        if not isinstance(value, tuple) or not all(isinstance(p, tuple) and len(p) == 2 for p in value):
            return f"must be (spoken, written) pairs, not {value!r}"
        return next((problem for spoken, written in value if (problem := word_problem(spoken, written))), None)
    if name == "profile" and not (isinstance(value, tuple) and all(isinstance(p, Profile) for p in value)):
        return f"must be [profile.\"APP\"] tables, not {value!r}"
    if name in _SPANS:
        low, low_ok, high = _SPANS[name]
        if not (math.isfinite(value) and (value >= low if low_ok else value > low) and value <= high):
            least = f"{low:g} or more" if low_ok else f"more than {low:g}"
            return f"must be a number {least} and at most {high:g}, not {value}"
    return None


def _paste_chord_problem(value: Any) -> str | None:
    if not isinstance(value, tuple) or not all(
            isinstance(pair, tuple) and len(pair) == 2 and all(isinstance(part, str) for part in pair)
            for pair in value):
        return f"must be (app, chord) pairs, not {value!r}"
    for app, chord in value:
        problem = chord_problem(chord)
        if problem:
            return f"{app!r} {problem}"
        if not app.strip():
            return "has an empty application name"
    return None


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
    #: where global keys come from: "x11" (pynput), "evdev" (the kernel's input devices, read
    #: only: Wayland), "compositor" (sway's or Hyprland's IPC, following release bindings on Ctrl),
    #: "portal" (one desktop shortcut through xdg-desktop-portal's GlobalShortcuts: KDE,
    #: GNOME 48+, Hyprland), "none" (`ctrlspeak toggle` bound to a desktop shortcut); "auto"
    #: picks X11 in an X11 session, else evdev where /dev/input is readable, else the
    #: compositor's IPC on sway or Hyprland, else the portal
    hotkey_backend: str = "auto"
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
    #: live text while speaking: the open segment is decoded again every live_interval_s (less
    #: often when the machine cannot keep up; the final text is the same either way).
    #: Segments' text goes to `status --follow` as partial events with live off too
    live: bool = False
    #: 0.3 s: a word shows about half this long after its end plus the model's own lookahead
    #: (scripts/bench_live.py, tiny-en decoded again at 0.3: p50 0.11 s, p95 0.27 s)
    live_interval_s: float = 0.3
    #: a streaming model's live text comes chunk by chunk instead, in one of the model's own
    #: chunk sizes (160, 560 or 1120 ms for tiny-en; 80 to 1120 for Nemotron streaming): shorter
    #: shows words sooner for more CPU. 0 picks 160 ms, or 560 for a big model on a CPU
    stream_chunk_ms: int = 0
    #: typing while speaking: each segment's text goes to the cursor as soon as it is final
    #: (a pause ended it), the rest at the stop; only final text, so nothing is taken back
    live_typing: bool = False
    sounds: bool = True
    #: "paste" (clipboard + Ctrl+V), "type" (keystrokes) or "stdout"
    output: str = "paste"
    #: the paste chord per application, over the built-in choice (Ctrl+Shift+V in a terminal,
    #: Ctrl+V elsewhere): (app, chord) pairs, app a WM_CLASS part or Wayland app_id (any case),
    #: chord "ctrl+v", "ctrl+shift+v", "shift+insert" or "type"; the config file's
    #: ``[paste_chord]`` table, CTRLSPEAK_PASTE_CHORD="app=chord,app=chord"
    paste_chord: tuple[tuple[str, str], ...] = ()
    restore_clipboard: bool = True

    # -- the text pipeline (ctrlspeak/text/): between the model and the cursor ----------------
    #: the user's dictionary, the ``[words]`` table (spoken = "written"): whole words and
    #: phrases, any case in, the written form's case out; `ctrlspeak words` edits it
    words: tuple[tuple[str, str], ...] = ()
    #: "comma", "period", "new line"... become the marks (English); off by default because a
    #: dictation about punctuation would lose its words
    spoken_punctuation: bool = False
    #: "um", "uh", "er", "erm", "hmm" taken out
    remove_fillers: bool = False
    #: capitals at sentence starts: "auto" (default) only where the model writes no capitals or
    #: punctuation of its own (CTC models, tiny-en; Parakeet and Canary write their own), "on", "off"
    auto_capitalize: str = "auto"
    #: a period at the end of a dictation that ends without punctuation: "auto" (default) as
    #: auto_capitalize, "on", "off" (true and false mean on and off)
    trailing_period: str = "auto"
    #: a space after each dictation
    trailing_space: bool = False
    #: per application overrides, the ``[profile."APP"]`` tables (ctrlspeak.text.profile)
    profile: tuple[Profile, ...] = ()
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
        for f in fields(self):
            problem = value_problem(f.name, getattr(self, f.name))
            if problem:
                raise errors.ConfigError(f"{f.name} {problem}")

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


@dataclass(frozen=True)
class Source:
    """Where a value came from, for an error that says what to fix."""

    #: "config file /path, line 3", "CTRLSPEAK_THREADS", "the command line"
    where: str
    hint: str


def _file_source(path: Path, text: str, key: str, table: str | None = None) -> Source:
    line = _line_of(text, key, table)
    where = f"config file {path}" + (f", line {line}" if line else "")
    return Source(where, f"fix or remove that line in {path}; without it the default applies")


def _line_of(text: str, key: str, table: str | None = None) -> int | None:
    """The line that sets top-level ``key``, or ``key`` inside ``[table]`` (tomllib keeps no
    positions; the file is flat but for that one table)."""
    pattern = re.compile(rf"""^\s*(?:{re.escape(key)}|"{re.escape(key)}"|'{re.escape(key)}')\s*=""")
    header = re.compile(rf"""^\s*\[\s*(?:{re.escape(table)}|"{re.escape(table)}")\s*\]""") if table else None
    inside = table is None
    for number, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith("["):
            if header is not None and header.match(line):
                inside = True
                continue
            if inside:
                return None  # another [table]: not a key of ours any more
        if inside and pattern.match(line):
            return number
    return None


def _table_source(path: Path, text: str, key: str, value: Any) -> Source:
    """For a table, the line of its first bad entry when there is one, else the key's own line."""
    if isinstance(value, dict) and key.replace("-", "_") == "paste_chord":
        for entry, chord in value.items():
            if not isinstance(chord, str) or chord_problem(chord.strip().lower()):
                if _line_of(text, entry, table=key):
                    return _file_source(path, text, entry, table=key)
                break
    return _file_source(path, text, key)


def _env_source(var: str) -> Source:
    return Source(f"environment variable {var}", f"fix or unset {var}")


_FLAGS = Source("the command line", "see `ctrlspeak --help`")


def _coerce(key: str, value: Any, source: Source) -> Any:
    """``value`` as the key's type, checked for what it means (value_problem)."""
    kind = _field_types()[key]

    def bad(problem: str) -> errors.ConfigError:
        return errors.ConfigError(f"{source.where}: {key} {problem}", hint=source.hint)

    if key == "paste_chord":
        return _coerce_paste_chord(value, bad)
    if key in ("words", "profile"):
        return _coerce_text_table(key, value, bad)
    if key in ("auto_capitalize", "trailing_period") and switch(value) is not None:
        return switch(value)  # true/false too: trailing_period was once a switch
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
            if isinstance(value, float):
                if not value.is_integer():
                    raise bad(f"must be a whole number, not {value!r}")  # int(2.9) would be a silent 2
                value = int(value)
            result: Any = int(value)
        elif "float" in kind:
            if isinstance(value, bool):
                raise ValueError(value)
            result = float(value)
        elif "None" in kind and (value is None or str(value).strip() == ""):
            return None
        elif isinstance(value, (dict, list)):
            raise ValueError(value)
        else:
            result = str(value)
    except (ValueError, TypeError, OverflowError):
        raise bad(f"has an invalid value {value!r} (expected {kind})") from None
    if key == "log_level":
        result = result.strip().upper()
    problem = value_problem(key, result)
    if problem:
        raise bad(problem)
    return result


def _coerce_paste_chord(value: Any, bad: Callable[[str], errors.ConfigError]) -> tuple[tuple[str, str], ...]:
    """A ``[paste_chord]`` table (from the file) or "app=chord,app=chord" (environment) as pairs."""
    if isinstance(value, str):
        try:
            pairs = parse_table_text(value)
        except ValueError as exc:
            raise bad(f"must be app=chord pairs separated by commas: {exc}") from None
    elif isinstance(value, dict):
        pairs = []
        for app, chord in value.items():
            if not isinstance(chord, str):
                raise bad(f"{app!r} must be a chord in quotes, not {chord!r}")
            pairs.append((app, chord.strip().lower()))
    else:
        raise bad(f"must be a table of app = chord, not {value!r}")
    result = tuple(pairs)
    problem = value_problem("paste_chord", result)
    if problem:
        raise bad(problem)
    return result


def _coerce_text_table(key: str, value: Any, bad: Callable[[str], errors.ConfigError]) -> Any:
    """``[words]`` (a table; "spoken=written,..." from the environment) or ``[profile."APP"]``."""
    if key == "words" and isinstance(value, str):
        table: dict[str, str] = {}
        for item in filter(str.strip, value.split(",")):
            spoken, sep, written = item.partition("=")
            if not sep:
                raise bad(f"must be spoken=written pairs separated by commas, not {item!r}")
            table[spoken.strip()] = written.strip()
        value = table
    elif key == "profile" and isinstance(value, str):
        raise bad("can only be set in the config file, as [profile.\"APP\"] tables")
    try:
        return parse_words(value) if key == "words" else parse_profiles(value)
    except ValueError as exc:
        raise bad(str(exc)) from None


def read_file(path: Path) -> dict[str, Any]:
    """The config file's settings; a missing file is empty, a broken one an ERR_CONFIG."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise errors.ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
    try:
        text = raw.decode("utf-8")
        data = tomllib.loads(text)
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise errors.ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
    known = _field_types()
    values: dict[str, Any] = {}
    for key, value in data.items():
        name = key.replace("-", "_")
        if name not in known:
            log.warning("config file %s: unknown key %r ignored", path, key)
            continue
        source = _table_source(path, text, key, value)
        if name in ("paste_chord", "words", "profile") and not isinstance(value, dict):  # "a=b,..." is the env's
            lines = {"paste_chord": 'app = "chord"', "words": 'spoken = "written"'}.get(name)
            shape = f"[{key}] then {lines} lines" if lines else f'[{key}."APP"] tables'
            raise errors.ConfigError(f"{source.where}: {key} must be a table ({shape}), not {value!r}",
                                     hint=source.hint)
        values[name] = _coerce(name, value, source)
    return values


def read_document(path: Path) -> dict[str, Any]:
    """The config file as its TOML document (tables as written, unknown keys kept), for a verb
    that edits one setting and writes the rest back as it was; a missing file is empty. The
    file must load as a config first (ERR_CONFIG naming the line): no verb writes on top of a
    file that is already wrong."""
    read_file(path)
    try:
        return tomllib.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    except OSError as exc:
        raise errors.ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None


def write_document(path: Path, data: Mapping[str, Any]) -> None:
    """Write ``data`` (from :func:`read_document`, edited) as the config file, atomically and
    with the file's own permissions (0600 for a new one)."""
    import tomli_w

    from ctrlspeak.fileutil import atomic_write

    mode = 0o600
    try:
        mode = path.stat().st_mode & 0o777
    except FileNotFoundError:
        pass
    try:
        atomic_write(path, tomli_w.dumps(dict(data)).encode("utf-8"), mode=mode)
    except OSError as exc:
        raise errors.ConfigError(f"cannot write the config file {path}: {exc.strerror or exc}") from exc


def from_env(env: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name in _field_types():
        var = ENV_PREFIX + name.upper()
        raw = env.get(var)
        if raw is not None:
            values[name] = _coerce(name, raw, _env_source(var))
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
    values.update({k: _coerce(k, v, _FLAGS) for k, v in (flags or {}).items() if v is not None})
    values["paste_chord"] = with_profile_chords(values.get("paste_chord", ()), values.get("profile", ()))
    return Config(**values)


def with_profile_chords(table: tuple[tuple[str, str], ...], profiles: tuple[Profile, ...]) -> tuple[tuple[str, str], ...]:
    """``[paste_chord]`` plus each ``[profile."APP"]`` paste_chord for an app it does not name
    (the output picks chords from the one table; the ``[paste_chord]`` entry wins). A profile's
    ``output`` is the output's own business (``app_outputs``), not a chord."""
    named = {app.casefold() for app, _ in table}
    extra = tuple((p.app, p.paste_chord) for p in profiles
                  if p.paste_chord and p.app.casefold() not in named)
    return tuple(table) + extra
