"""How one dictation's text meets the text already before the cursor.

Two dictations into the same field must not run together (``...after breakfastthe train...``).
:func:`fit` is pure: given what the previous dictation left before the cursor (when that can
be known) and the new transcript, it returns the exact string to insert. The daemon decides
what "before the cursor" is (the last dictation into the same window, or nothing for another
window); this module only decides the characters.
"""
from __future__ import annotations

import re

#: characters that end a sentence, possibly followed by closing quotes or brackets
_SENTENCE_END = re.compile(r"""[.!?…]["'”’)\]]*$""")
#: a new text starting with one of these attaches to the word before it (no space in between)
#: what takes no space before it: punctuation that attaches to the word before, and a line
#: break (a spoken "new line" at the start of a piece)
_ATTACHES = tuple(",.;:!?…)]}%\n")
_SPACES = re.compile(r"[ \t\u00a0]{2,}")


def tidy(text: str) -> str:
    """The transcript as it should be inserted on its own: trimmed, runs of spaces collapsed."""
    return _SPACES.sub(" ", text.strip(" \t\u00a0"))


def fit(before: str | None, text: str, *, cased: bool) -> str:
    """The string to insert after ``before`` so that ``before + result`` reads right.

    ``before`` is the text known to precede the cursor (the previous dictation into this field),
    or None when nothing is known to be there. ``cased`` says whether the model writes upper and
    lower case; only then is the first letter capitalised after a sentence end (a lowercase
    model's text stays as it was heard).

    - one space between the previous text and the new one; none at the start of the field,
      after a space or a newline, or before punctuation that attaches to the previous word or
      a line break;
    - the model's double spaces collapsed, leading and trailing spaces trimmed;
    - after ".", "!", "?" (closing quotes allowed) the first letter is capitalised when ``cased``.
    """
    body = tidy(text)
    if not body:
        return ""
    if not before:
        return body
    if cased and _SENTENCE_END.search(before.rstrip()):
        body = _capitalise(body)
    if before[-1].isspace() or body.startswith(_ATTACHES):
        return body
    return " " + body


def _capitalise(text: str) -> str:
    for i, ch in enumerate(text):
        if ch.isalpha():
            upper = ch.upper()
            return text[:i] + upper + text[i + 1:] if len(upper) == 1 else text  # "ß" stays
        if ch not in "\"'“‘(¿¡":
            return text  # a number or a symbol starts it: nothing to capitalise
    return text
