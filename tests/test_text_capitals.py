"""Capitals and a closing period for models that write neither."""
from __future__ import annotations

from hypothesis import given, strategies as st

from ctrlspeak.text.capitals import add_period, capitalise, model_writes_case, wanted
from ctrlspeak.text.tokens import words


def test_auto_only_for_a_model_without_case_or_punctuation():
    assert wanted("auto", "hello there") and not wanted("auto", "Hello there") and not wanted("auto", "hi, there")
    assert wanted("on", "Hello") and not wanted("off", "hello")
    assert model_writes_case("x.") and not model_writes_case("i am here")


def test_sentences_and_the_pronoun():
    assert capitalise("hello. i'm here! ok\nnext", before=None) == "Hello. I'm here! Ok\nNext"
    assert capitalise("and more", before="some text") == "and more"
    assert capitalise("and more", before="the end.") == "And more"
    assert capitalise("iphone and ikea", before=None) == "Iphone and ikea"


def test_period():
    assert add_period("hello") == "hello."
    assert add_period("done?") == "done?" and add_period("") == "" and add_period("a\n") == "a\n"


_text = st.text(alphabet="abc ix.?!\n", max_size=30)


@given(_text, st.one_of(st.none(), _text))
def test_capitals_idempotent_and_keep_words(text, before):
    once = capitalise(text, before=before)
    assert capitalise(once, before=before) == once
    assert words(once) == words(text)
    assert once.lower() == text.lower()


@given(_text)
def test_period_idempotent(text):
    once = add_period(text)
    assert add_period(once) == once and words(once) == words(text)
