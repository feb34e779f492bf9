"""Capitals and a closing period for models that write neither (CTC models, the bundled tiny-en).

``auto_capitalize``: "on" always, "off" never, "auto" only when the model's text has no
capital letter and no punctuation of its own (a model that writes them knows better). The
first letter is a capital at the start of a field or after a sentence end (``before`` says
which), so is every sentence's first letter and the English pronoun "i".
"""
from __future__ import annotations

import re

_SENTENCE_END = re.compile(r"""[.!?…]["'”’)\]]*$""")
_INNER_START = re.compile(r"""((?:[.!?…]["'”’)\]]*[ \t]+)|\n\s*)(["'“‘(\[¿¡]*)([^\W\d_])""")
_PRONOUN_I = re.compile(r"(?<![\w'’-])i(?=(?:['’](?:m|d|ll|ve|s)\b)|(?![\w'’-]))")
_PUNCTUATION = re.compile(r"[.,;:!?…]")
_TRAILING_OK = re.compile(r"""[.,;:!?…\-—"'”’)\]]\s*$""")


def model_writes_case(text: str) -> bool:
    """Whether ``text`` has capitals or punctuation of its own (then "auto" leaves it be)."""
    return any(ch.isupper() for ch in text) or bool(_PUNCTUATION.search(text))


def wanted(setting: str, raw: str) -> bool:
    return setting == "on" or (setting == "auto" and not model_writes_case(raw))


def capitalise(text: str, *, before: str | None, english: bool = True) -> str:
    if english:
        text = _PRONOUN_I.sub("I", text)
    text = _INNER_START.sub(lambda m: m.group(1) + m.group(2) + _upper(m.group(3)), text)
    if not before or _SENTENCE_END.search(before.rstrip()) or before.endswith("\n"):
        text = _first(text)
    return text


def add_period(text: str) -> str:
    """A period at the end unless it ends with punctuation already (or is empty)."""
    if not text.strip() or _TRAILING_OK.search(text) or text.endswith("\n"):
        return text
    stripped = text.rstrip()
    return stripped + "." + text[len(stripped):]


def _upper(ch: str) -> str:
    upper = ch.upper()
    return upper if len(upper) == 1 else ch  # "ß" stays


def _first(text: str) -> str:
    for i, ch in enumerate(text):
        if ch.isalpha():
            return text[:i] + _upper(ch) + text[i + 1:]
        if ch not in "\"'“‘(¿¡ \t\n":
            return text
    return text
