"""Spoken punctuation and commands (``spoken_punctuation = true``): "comma" becomes ",".

The words are a per-language table (:data:`TABLES`; English only so far). A punctuation word
used as a word stays one: after an article or determiner ("the period of time", "a comma
separated list") or before "of" ("period of grace"). Spacing is mended as the mark needs it:
no space before , . ? ! : ; and a closing quote or bracket, none after an opening one, none
around a hyphen or a line break; the word after . ? ! or a line break gets a capital unless
capitals are off.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from ctrlspeak.text.tokens import TRAILING, core, split_edges

#: attach: no space before; open: none after; join: none either side; free: spaces both sides;
#: break: a line break, no spaces around it
Kind = Literal["attach", "open", "join", "free", "break"]


@dataclass(frozen=True)
class Mark:
    text: str
    kind: Kind
    #: the next word starts a sentence
    ends_sentence: bool = False


@dataclass(frozen=True)
class Table:
    #: spoken phrase (lower case words) -> mark
    marks: dict[tuple[str, ...], Mark]
    #: a mark word after one of these, or before ``of_word``, is the word itself
    determiners: frozenset[str]
    of_word: str


_EN = Table(
    marks={
        ("period",): Mark(".", "attach", True), ("full", "stop"): Mark(".", "attach", True),
        ("comma",): Mark(",", "attach"),
        ("question", "mark"): Mark("?", "attach", True),
        ("exclamation", "mark"): Mark("!", "attach", True), ("exclamation", "point"): Mark("!", "attach", True),
        ("colon",): Mark(":", "attach"), ("semicolon",): Mark(";", "attach"),
        ("new", "line"): Mark("\n", "break", True), ("new", "paragraph"): Mark("\n\n", "break", True),
        ("open", "quote"): Mark('"', "open"), ("close", "quote"): Mark('"', "attach"),
        ("open", "paren"): Mark("(", "open"), ("close", "paren"): Mark(")", "attach"),
        ("dash",): Mark("—", "free"), ("hyphen",): Mark("-", "join"),
    },
    determiners=frozenset({"the", "a", "an", "this", "that", "each", "every"}),
    of_word="of",
)

#: by language code (the part before "-"); None (the model's default) means English
TABLES: dict[str, Table] = {"en": _EN}
_LONGEST = 2
_END_WORD = re.compile(r"[.!?…][\"'”’)\]]*$")


def table_for(language: str | None) -> Table | None:
    return TABLES.get((language or "en").split("-")[0].lower())


def apply_spoken(text: str, *, language: str | None = None, capitals: bool = True) -> str:
    table = table_for(language)
    if table is None:
        return text
    # words and the whitespace between them (a run holding a newline is a line break already there)
    words = [t for t in re.split(r"(\s+)", text) if t]
    # (text, space allowed before, space allowed after)
    pieces: list[tuple[str, bool, bool]] = []
    cap_next = False
    i = 0
    while i < len(words):
        token = words[i]
        if token.isspace():
            if "\n" in token:
                pieces.append((token.replace(" ", "").replace("\t", ""), False, False))
            i += 1
            continue
        found = _match(table, words, i)
        if found is None:
            if cap_next and capitals:
                token = _capitalise(token)
            cap_next = bool(_END_WORD.search(token))
            pieces.append((token, True, True))
            i += 1
            continue
        mark, i = found
        if mark.kind == "attach" and pieces and not pieces[-1][0].isspace():
            last = pieces[-1]
            stripped = last[0].rstrip(TRAILING) if mark.text in TRAILING else last[0]
            pieces[-1] = (stripped or last[0], last[1], last[2])  # the model's own mark gives way
        pieces.append((mark.text, mark.kind in ("open", "free"), mark.kind in ("attach", "free")))
        if mark.ends_sentence:
            cap_next = True
        elif mark.kind != "open":
            cap_next = False
    return _render(pieces)


def _match(table: Table, words: list[str], i: int) -> tuple[Mark, int] | None:
    """The mark spoken at words[i] and the index after it, or None (a word, or a word used as one)."""
    for length in range(_LONGEST, 0, -1):
        span: list[str] = []
        j = i
        while j < len(words) and len(span) < length:
            if not words[j].isspace():
                span.append(words[j])
            elif "\n" in words[j]:
                break
            j += 1
        if len(span) < length:
            continue
        phrase = tuple(core(t) for t in span)
        mark = table.marks.get(phrase)
        if mark is None:
            continue
        lead, _, _ = split_edges(span[0])
        if lead or any(split_edges(t)[2] for t in span[:-1]):
            continue  # quoted, or punctuation inside the phrase: the model heard words
        previous = _neighbour(words, i, -1)
        following = _neighbour(words, j - 1, 1)
        if (previous is not None and core(previous) in table.determiners and not previous.endswith(tuple(TRAILING))) \
                or (following is not None and core(following) == table.of_word and not split_edges(span[-1])[2]):
            return None
        return mark, j
    return None


def _neighbour(words: list[str], i: int, step: int) -> str | None:
    j = i + step
    while 0 <= j < len(words):
        if not words[j].isspace():
            return words[j]
        if "\n" in words[j]:
            return None
        j += step
    return None


def _render(pieces: list[tuple[str, bool, bool]]) -> str:
    out = ""
    after_ok = False
    for text, before_ok, space_after in pieces:
        if out and after_ok and before_ok:
            out += " "
        out += text
        after_ok = space_after
    return out


def _capitalise(token: str) -> str:
    for k, ch in enumerate(token):
        if ch.isalpha():
            upper = ch.upper()
            return token[:k] + upper + token[k + 1:] if len(upper) == 1 else token
        if ch not in "\"'“‘([¿¡":
            return token
    return token
