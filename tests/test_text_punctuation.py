"""Spoken punctuation: the marks, the words that stay words, the spacing around them."""
from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from ctrlspeak.text.punctuation import TABLES, apply_spoken
from ctrlspeak.text.tokens import words


@pytest.mark.parametrize("text, expected", [
    ("hello comma world period", "hello, world."),
    ("is it question mark yes exclamation point", "is it? Yes!"),
    ("wow exclamation mark full stop", "wow!."),
    ("note colon one semicolon two", "note: one; two"),
    ("dear sir new line thanks new paragraph bye", "dear sir\nThanks\n\nBye"),
    ("he said open quote hi close quote", 'he said "hi"'),
    ("see open paren below close paren", "see (below)"),
    ("well hyphen known dash or not", "well-known — or not"),
    ("the period of time", "the period of time"),
    ("a comma separated list", "a comma separated list"),
    ("each colon is an organ", "each colon is an organ"),
    ("a full stop", "a full stop"),
    ("Hello, comma world period.", "Hello, world."),
    ("end period. new line next", "end.\nNext"),
])
def test_examples(text, expected):
    assert apply_spoken(text) == expected


def test_no_capitals_when_off_and_other_languages_untouched():
    assert apply_spoken("one period two", capitals=False) == "one. two"
    assert apply_spoken("un period deux", language="fr") == "un period deux"
    assert apply_spoken("so period b", language="en-GB") == "so. B"


def test_table_is_per_language():
    assert set(TABLES) == {"en"}


_mark_words = ["period", "comma", "question mark", "new line", "open quote", "close quote", "dash", "hyphen",
               "colon", "new paragraph", "full stop", "open paren", "close paren", "semicolon"]
_word = st.text(alphabet="bcdfgjkvwxz", min_size=1, max_size=6)


@given(st.lists(st.one_of(_word, st.sampled_from(_mark_words)), max_size=15))
def test_keeps_every_other_word_and_spacing(tokens):
    text = " ".join(tokens)
    out = apply_spoken(text, capitals=False)
    assert words(out) == [w for t in tokens if t not in _mark_words for w in words(t)]  # only the marks go
    for bad in (" ,", " .", " ?", " :", " ;", "( ", " )", " \n", "\n ", "  "):
        assert bad not in out
    assert out == out.strip(" ")


@given(st.lists(_word, max_size=12))
def test_no_marks_no_change(tokens):
    text = " ".join(tokens)
    assert apply_spoken(text) == text
