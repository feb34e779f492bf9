"""Hesitations ("um", "uh", "er", "erm", "hmm") taken out, the sentence mended around them.

"Um, so I think" -> "So I think"; "I, uh, think" -> "I think"; "it works, um." -> "it works.".
Only these sounds: a real word that looks like one ("err", "hum") is left alone.
"""
from __future__ import annotations

import re

from ctrlspeak.text.tokens import split_edges

_FILLER = re.compile(r"^(?:u+m+|u+h+|h+m+|e+r+m+|er)$", re.IGNORECASE)
_ENDS = ".!?…"


def is_filler(word: str) -> bool:
    return bool(_FILLER.match(word))


def remove_fillers(text: str) -> str:
    out: list[str] = []  # tokens kept, each possibly with the punctuation moved onto it
    capital_next = False
    for part in _parts(text):
        if isinstance(part, str):
            out.append(part)
            continue
        for token in part:
            lead, word, trail = split_edges(token)
            if word and is_filler(word) and not lead:
                if word[0].isupper() and (not out or _ends_sentence(out)):
                    capital_next = True  # it started a sentence: the next word does now
                end = next((ch for ch in trail if ch in _ENDS), "")
                if end and out and not out[-1].isspace():
                    out[-1] = out[-1].rstrip(",;:") + ("" if out[-1][-1:] in _ENDS else end)
                elif "," in trail and out and not out[-1].isspace() and out[-1].endswith(","):
                    out[-1] = out[-1][:-1]  # "I, uh, think": the pair of commas went with it
                continue
            if capital_next and word:
                token = lead + word[0].upper() + word[1:] + trail
            capital_next = False
            out.append(token)
    return _join(out)


def _ends_sentence(out: list[str]) -> bool:
    last = out[-1]
    return last.isspace() or last.rstrip("\"'”’)]")[-1:] in _ENDS


def _parts(text: str) -> list[str | list[str]]:
    """Whitespace runs that hold a newline stay as they are (str); the rest split into tokens."""
    pieces: list[str | list[str]] = []
    for part in re.split(r"([ \t]*\n\s*)", text):
        if "\n" in part:
            pieces.append(part)
        elif part.split():
            pieces.append(part.split())
    return pieces


def _join(out: list[str]) -> str:
    text = ""
    for token in out:
        if token.isspace() or not text or text[-1].isspace():
            text += token
        else:
            text += " " + token
    return text
