"""Fillers out, the sentence mended around them."""
from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from ctrlspeak.text.fillers import is_filler, remove_fillers
from ctrlspeak.text.tokens import words


@pytest.mark.parametrize("text, expected", [
    ("um so I think", "so I think"),
    ("Um, so I think", "So I think"),
    ("I, uh, think", "I think"),
    ("it works, um.", "it works."),
    ("hmm. Well er okay erm fine uhh", "Well okay fine"),
    ("first line\nuh second", "first line\nsecond"),
    ("to err is human, hum", "to err is human, hum"),
    ("um", ""),
])
def test_examples(text, expected):
    assert remove_fillers(text) == expected


_filler = st.sampled_from(["um", "uh", "er", "erm", "hmm", "Um,", "uh.", "umm"])
_word = st.text(alphabet="abcdefghijklnopqrstvwxyz", min_size=1, max_size=7).filter(lambda w: not is_filler(w))
_punct = st.sampled_from(["", "", ",", "."])


@given(st.lists(st.one_of(_filler, st.tuples(_word, _punct).map("".join)), max_size=15))
def test_drops_only_fillers_and_is_idempotent(tokens):
    text = " ".join(tokens)
    out = remove_fillers(text)
    assert words(out) == [w for w in words(text) if not is_filler(w)]
    assert remove_fillers(out) == out
    assert "  " not in out and out == out.strip()
