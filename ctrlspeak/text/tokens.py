"""Splitting text into words with the punctuation a model glued to them, and joining it back."""
from __future__ import annotations

import re

#: punctuation a model (or a spoken mark) attaches to the end of the word before it
TRAILING = ",.;:!?…"
_EDGE = re.compile(r"^([\"'“‘(\[¿¡]*)(.*?)([,.;:!?…\"'”’)\]]*)$", re.S)
#: words: letters, digits, apostrophes inside a word; what "never drops a word" counts
WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")


def core(token: str) -> str:
    """The token without the punctuation around it, case-folded: what a table is matched on."""
    match = _EDGE.match(token)
    return (match.group(2) if match else token).casefold()


def split_edges(token: str) -> tuple[str, str, str]:
    """(leading punctuation, the word, trailing punctuation) of one whitespace-free token."""
    match = _EDGE.match(token)
    if match is None:  # pragma: no cover - the pattern matches every string
        return "", token, ""
    return match.group(1), match.group(2), match.group(3)


def words(text: str) -> list[str]:
    """The words of ``text`` in order, case-folded (for tests and checks, not for output)."""
    return [w.casefold() for w in WORD.findall(text)]
