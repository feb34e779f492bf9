"""``apply(text, ctx)``: the model's text as the person wants it at the cursor.

Every delivery path calls this (paste, type, stdout, typing while speaking, ``transcribe``,
``retry``); history keeps both the model's text and this one. The steps, in order:

1. fillers removed        (remove_fillers)
2. the user's dictionary  ([words], a profile's words first)
3. spoken punctuation     (spoken_punctuation)
4. capitals               (auto_capitalize: on, or auto when the model writes none)
5. a closing period       (trailing_period: on, or auto when the model writes none; only
                           where the dictation ends: ``ends``)
6. spaces tidied          (:func:`ctrlspeak.desktop.spacing.tidy`; a line break keeps no space
                           around it), then a trailing space (trailing_space)

Spacing between dictations stays :func:`ctrlspeak.desktop.spacing.fit`'s job, after this.
Each step is a pure function; the settings come from ``ctx.effective()`` (the focused app's
profile over the config).
"""
from __future__ import annotations

import re

from ctrlspeak.desktop import spacing
from ctrlspeak.desktop.spacing import tidy
from ctrlspeak.text import capitals, fillers, punctuation, replace
from ctrlspeak.text.context import Context, TextSettings

_AROUND_BREAK = re.compile(r"[ \t]*\n[ \t]*")


def apply(text: str, ctx: Context | None = None, *, ends: bool = True) -> str:
    """``text`` through the steps; ``ends=False`` for a piece typed or printed while the person
    still speaks (the dictation goes on after it, so it gets no closing period)."""
    ctx = ctx if ctx is not None else Context()
    settings = ctx.effective()
    english = punctuation.table_for(settings.language) is punctuation.TABLES["en"]
    capitals_on = capitals.wanted(settings.auto_capitalize, text)
    out = text
    if settings.remove_fillers and english:
        out = fillers.remove_fillers(out)
    if settings.words:
        out = replace.replace_words(out, settings.words)
    if settings.spoken_punctuation:
        # a capital after a spoken sentence end where capitals are on, or where the model writes
        # them itself (it could not know the mark was coming)
        out = punctuation.apply_spoken(out, language=settings.language,
                                       capitals=settings.auto_capitalize != "off" or any(c.isupper() for c in text))
    if capitals_on:
        out = capitals.capitalise(out, before=ctx.before, english=english)
    if ends and capitals.wanted(settings.trailing_period, text):
        out = capitals.add_period(out)
    out = _AROUND_BREAK.sub("\n", tidy(out))
    if settings.trailing_space and ends and out and not out[-1].isspace():
        # only where the dictation ends: a piece typed while the person speaks is followed by
        # the next one (spacing.fit puts the space), and a space already typed would leave the
        # closing period nowhere to go (close() adds both)
        out += " "
    return out


def insert(text: str, ctx: Context, *, ends: bool = True) -> str:
    """``text`` as it goes in after ``ctx.before`` (the text known to be there, or None):
    through :func:`apply`, then spaced and capitalised after it (:func:`spacing.fit`)."""
    out = apply(text, ctx, ends=ends)
    cased = any(ch.isupper() for ch in out + (ctx.before or ""))  # the model (or the pipeline) writes case
    return spacing.fit(ctx.before, out, cased=cased)


def close(raw: str, ctx: Context) -> str:
    """What ends a dictation whose pieces all went in already (``ctx.before``, from the model's
    ``raw`` text): its closing period where one is wanted and missing, then its trailing space
    where one is wanted; else nothing."""
    settings = ctx.effective()
    if not ctx.before:
        return ""
    tail = ""
    if capitals.wanted(settings.trailing_period, raw):
        closed = capitals.add_period(ctx.before)
        tail = closed[len(ctx.before):] if closed.startswith(ctx.before) else ""
    if settings.trailing_space and not (ctx.before + tail)[-1].isspace():
        tail += " "
    return tail


__all__ = ["Context", "TextSettings", "apply", "close", "insert"]
