"""What the pipeline knows: the settings (from Config, one frozen value) and where the text goes.

:class:`TextSettings` is the config's text part; :class:`Context` adds the focused app's names
and the text known to be before the cursor. :meth:`Context.effective` is the settings that
apply in that app: a ``[profile."APP"]`` over the top level, else a built-in default (a
terminal gets no automatic capitals and no trailing period: a shell command is not a sentence).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ctrlspeak.text.profile import Profile, find


@dataclass(frozen=True)
class TextSettings:
    #: the user's dictionary: (spoken, written) pairs
    words: tuple[tuple[str, str], ...] = ()
    spoken_punctuation: bool = False
    remove_fillers: bool = False
    #: "auto": capitals (and a closing period) only where the model writes none of its own
    #: (CTC models, tiny-en); Parakeet and Canary write their own, so "auto" leaves them be
    auto_capitalize: str = "auto"
    trailing_period: str = "auto"
    trailing_space: bool = False
    #: the tables' language (spoken punctuation, fillers); only English ones exist yet
    language: str | None = None


@dataclass(frozen=True)
class Context:
    settings: TextSettings = TextSettings()
    profiles: tuple[Profile, ...] = ()
    #: the focused application's names (WM_CLASS parts, app_id); () = unknown
    app: tuple[str, ...] = ()
    #: the text known to be before the cursor (the last dictation into this window), or None
    before: str | None = None

    def effective(self) -> TextSettings:
        from ctrlspeak.desktop.chord import is_terminal

        base = self.settings
        if is_terminal(self.app):  # the built-in default, under any profile of the terminal's own
            base = dataclasses.replace(base, auto_capitalize="off", trailing_period="off")
        profile = find(self.profiles, self.app)
        if profile is None:
            return base
        changes: dict[str, Any] = {name: getattr(profile, name) for name in
                                   ("spoken_punctuation", "remove_fillers", "auto_capitalize", "trailing_period",
                                    "trailing_space", "language") if getattr(profile, name) is not None}
        if profile.words:
            spoken = {s.casefold() for s, _ in profile.words}
            changes["words"] = profile.words + tuple(p for p in base.words if p[0].casefold() not in spoken)
        return dataclasses.replace(base, **changes)


def from_config(cfg: Any) -> Context:
    """The Context for ``cfg`` (a :class:`~ctrlspeak.config.Config`), without an app yet."""
    # every text setting is a Config field of the same name: a new one cannot be forgotten here
    settings = TextSettings(**{f.name: getattr(cfg, f.name) for f in dataclasses.fields(TextSettings)})
    return Context(settings=settings, profiles=cfg.profile)
