"""Per-application profiles: the config's ``[profile."APP"]`` tables.

APP is a WM_CLASS part or a Wayland app_id, compared ignoring case, as in ``[paste_chord]``
(:mod:`ctrlspeak.desktop.focus` names the focused app). A profile sets only what it names;
everything else comes from the top-level settings. :func:`parse_profiles` turns the TOML
tables into :class:`Profile` values and says exactly what is wrong with a bad one.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

#: auto_capitalize and trailing_period: "auto" = only where the model writes no capitals or
#: punctuation of its own (ctrlspeak.text.capitals.wanted)
CAPITALS = ("auto", "on", "off")
#: what true and false meant when trailing_period was a switch, so an older config still loads
_SWITCH_WORDS = {True: "on", False: "off", "true": "on", "false": "off", "yes": "on", "no": "off",
                 "1": "on", "0": "off"}


def switch(value: Any) -> str | None:
    """``value`` as one of CAPITALS (true/false as on/off), or None when it is none of them."""
    if isinstance(value, bool):
        return _SWITCH_WORDS[value]
    if isinstance(value, str):
        text = value.strip().lower()
        return text if text in CAPITALS else _SWITCH_WORDS.get(text)
    return None
OUTPUTS = ("paste", "type", "stdout")


@dataclass(frozen=True)
class Profile:
    """What one application changes; None (or ``()`` for words) = the top-level setting.

    ``paste_chord`` joins the config's paste chord table
    (:func:`ctrlspeak.config.with_profile_chords`); ``output`` is the output mode in that app
    (:class:`ctrlspeak.desktop.output.Output`); ``language`` is the source language a
    recording started in that app is transcribed in (:func:`language_for`) and the language of
    the text pipeline's tables there.
    """

    app: str
    output: str | None = None
    paste_chord: str | None = None
    language: str | None = None
    #: (spoken, written) pairs over the top-level ``[words]`` (a spoken form here wins)
    words: tuple[tuple[str, str], ...] = ()
    spoken_punctuation: bool | None = None
    remove_fillers: bool | None = None
    auto_capitalize: str | None = None
    trailing_period: str | None = None
    trailing_space: bool | None = None


_BOOLS = ("spoken_punctuation", "remove_fillers", "trailing_space")


def parse_words(table: Any) -> tuple[tuple[str, str], ...]:
    """A ``[words]`` table (spoken = "written") as (spoken, written) pairs; ValueError says why not.
    Spoken forms are kept as written by the person; matching ignores case and spacing."""
    if not isinstance(table, Mapping):
        raise ValueError(f"must be a table of spoken = \"written\", not {table!r}")
    pairs = []
    for spoken, written in table.items():
        problem = word_problem(spoken, written)
        if problem:
            raise ValueError(problem)
        pairs.append((" ".join(spoken.split()), written))
    return tuple(pairs)


def word_problem(spoken: Any, written: Any) -> str | None:
    """What is wrong with one dictionary entry, or None."""
    if not isinstance(spoken, str) or not spoken.split():
        return f"has an empty spoken form {spoken!r}"
    if not isinstance(written, str):
        return f"{spoken!r} must be written text in quotes, not {written!r}"
    if "\n" in spoken or "\n" in written:
        return f"{spoken!r} must be on one line"
    return None


def parse_profiles(tables: Any) -> tuple[Profile, ...]:
    """``{"APP": {setting: value}}`` as Profiles; ValueError names the app and the setting."""
    from ctrlspeak.desktop.chord import chord_problem

    if not isinstance(tables, Mapping):
        raise ValueError(f"must be tables [profile.\"APP\"], not {tables!r}")
    profiles = []
    for app, table in tables.items():
        if not isinstance(app, str) or not app.strip():
            raise ValueError("has an empty application name")
        if not isinstance(table, Mapping):
            raise ValueError(f"{app!r} must be a table of settings, not {table!r}")
        values: dict[str, Any] = {}
        for key, value in table.items():
            name = key.replace("-", "_")
            where = f"{app!r} {name}"
            if name in _BOOLS:
                if not isinstance(value, bool):
                    raise ValueError(f"{where} must be true or false, not {value!r}")
            elif name in ("auto_capitalize", "trailing_period"):
                if switch(value) is None:
                    raise ValueError(f"{where} must be one of {', '.join(CAPITALS)}, not {value!r}")
                value = switch(value)
            elif name == "output":
                if value not in OUTPUTS:
                    raise ValueError(f"{where} must be one of {', '.join(OUTPUTS)}, not {value!r}")
            elif name == "paste_chord":
                problem = chord_problem(value.strip().lower()) if isinstance(value, str) else "must be a string"
                if problem:
                    raise ValueError(f"{where} {problem}")
                value = value.strip().lower()
            elif name == "language":
                if not isinstance(value, str) or not value.strip():
                    raise ValueError(f"{where} must be a language code in quotes, not {value!r}")
            elif name == "words":
                value = parse_words(value)
            else:
                raise ValueError(f"{app!r} has an unknown setting {key!r}")
            values[name] = value
        profiles.append(Profile(app=app, **values))
    return tuple(profiles)


def find(profiles: Sequence[Profile], names: Sequence[str]) -> Profile | None:
    """The first profile naming the app (ignoring case), or None."""
    folded = {name.casefold() for name in names}
    for profile in profiles:
        if profile.app.casefold() in folded:
            return profile
    return None


def language_for(profiles: Sequence[Profile], names: Callable[[], Sequence[str]],
                 default: str | None) -> str | None:
    """The source language for a recording started now: the focused app's profile's, else
    ``default``. ``names`` (the focused app's names) is only called when a profile sets a
    language at all."""
    with_language = [p for p in profiles if p.language]
    if not with_language:
        return default
    profile = find(with_language, names())
    return profile.language if profile is not None else default
