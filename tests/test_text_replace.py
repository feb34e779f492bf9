"""The user's dictionary: whole words, phrases, any case in, the written form's case out."""
from __future__ import annotations

from hypothesis import given, strategies as st

from ctrlspeak.text.replace import replace_words
from ctrlspeak.text.tokens import words

PAIRS = (("k eights", "k8s"), ("kubernetes", "Kubernetes"), ("cube control", "kubectl"), ("kube ctl", "kubectl"))


def test_phrase_whole_word_and_case():
    assert replace_words("Run cube control on K Eights", PAIRS) == "Run kubectl on k8s"
    assert replace_words("KUBERNETES is big", PAIRS) == "Kubernetes is big"
    assert replace_words("many spoken forms: kube  ctl and cube control", PAIRS) == \
        "many spoken forms: kubectl and kubectl"


def test_never_inside_a_word():
    pairs = (("cat", "Cat"),)
    assert replace_words("catalog concat cat's-eye cat-like bobcat", pairs) == "catalog concat cat's-eye cat-like bobcat"
    assert replace_words("a cat, the cat.", pairs) == "a Cat, the Cat."


def test_no_cascade_longest_first():
    pairs = (("new york", "New York"), ("york", "YORK"), ("new", "NEW"))
    assert replace_words("new york and york and new", pairs) == "New York and YORK and NEW"
    assert replace_words("a b", (("a", "b"), ("b", "a"))) == "b a"  # one pass: no swap back


_word = st.text(alphabet="abcdefgh", min_size=1, max_size=6)


@given(st.lists(_word, max_size=12), st.lists(st.tuples(_word, _word), max_size=4))
def test_words_not_in_the_table_are_kept(text_words, pairs):
    text = " ".join(text_words)
    spoken = {s for s, _ in pairs}
    out = replace_words(text, pairs)
    kept = [w for w in text_words if w not in spoken]
    for w in kept:  # every word it was not asked to replace is still there, as often or more
        assert words(out).count(w) >= text_words.count(w)


@given(st.lists(_word, max_size=12))
def test_empty_table_is_identity(text_words):
    text = " ".join(text_words)
    assert replace_words(text, ()) == text


@given(st.lists(_word, max_size=12))
def test_idempotent_when_written_forms_are_not_spoken(text_words):
    pairs = (("abc", "XYZ1"), ("de f", "Q9"))
    once = replace_words(" ".join(text_words), pairs)
    assert replace_words(once, pairs) == once
