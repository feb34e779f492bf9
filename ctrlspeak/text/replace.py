"""The user's dictionary (``[words]``): a spoken word or phrase becomes the written form.

Whole words only ("cat" is not replaced inside "catalog"), a phrase matches across any run of
spaces, case is ignored in the match and the written form keeps its own case. One pass with
the longest phrase first, so a written form is never looked up again (no cascades, and the
same text in gives the same text out).
"""
from __future__ import annotations

import functools
import re
from collections.abc import Sequence

Pairs = Sequence[tuple[str, str]]


@functools.lru_cache(maxsize=16)
def _compile(pairs: tuple[tuple[str, str], ...]) -> tuple[re.Pattern[str] | None, dict[str, str]]:
    """The one alternation for ``pairs`` and the written form by folded spoken form (a pure
    function of an immutable value: the cache only saves recompiling at each dictation)."""
    lookup: dict[str, str] = {}
    for spoken, written in pairs:
        key = " ".join(spoken.casefold().split())
        lookup.setdefault(key, written)  # the first entry for a spoken form wins (profiles come first)
    if not lookup:
        return None, lookup
    phrases = sorted(lookup, key=len, reverse=True)
    body = "|".join(r"\s+".join(re.escape(word) for word in phrase.split()) for phrase in phrases)
    # not inside a word, a contraction or a hyphenated word: "cat" never hits "catalog" or "cat's-eye"
    return re.compile(rf"(?<![\w'’-])(?:{body})(?![\w'’-])", re.IGNORECASE), lookup


def replace_words(text: str, pairs: Pairs) -> str:
    pattern, lookup = _compile(tuple(pairs))
    if pattern is None:
        return text
    return pattern.sub(lambda m: lookup[" ".join(m.group(0).casefold().split())], text)
