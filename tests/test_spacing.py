"""Consecutive dictations into one field (issue 10, item 16): a pure function, tested by property."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ctrlspeak.desktop.spacing import fit, tidy

words = st.text(alphabet=st.characters(codec="utf-8", categories=("L", "N", "P", "Zs")), max_size=40)
befores = st.one_of(st.none(), st.text(max_size=30))


def test_the_seen_case_and_the_rules():
    assert fit("we left after breakfast", "the train was late", cased=False) == " the train was late"
    assert fit(None, "the train", cased=False) == "the train"
    assert fit("", "the train", cased=True) == "the train"
    assert fit("first line\n", "next", cased=False) == "next"
    assert fit("We left.", "the  train   was late ", cased=True) == " The train was late"
    assert fit("We left.", "the train", cased=False) == " the train", "a lowercase model stays lowercase"
    assert fit('He said "stop."', "then", cased=True) == " Then"
    assert fit("We left", ", then", cased=True) == ", then"
    assert fit("We left.", "", cased=True) == ""
    assert fit("Done!", "42 more", cased=True) == " 42 more"
    assert fit("the list", "\nmilk", cased=False) == "\nmilk", "no space before a spoken new line"


@settings(max_examples=400)
@given(before=befores, text=words, cased=st.booleans())
def test_properties(before, text, cased):
    out = fit(before, text, cased=cased)
    body = tidy(text)
    assert "  " not in out, "no double spaces, the model's collapsed"
    if not body:
        assert out == ""
        return
    if not before or before[-1].isspace():
        assert not out[:1].isspace(), "nothing at the start of a field, after a space or a newline"
    joined = (before or "") + out
    if before and not before[-1].isspace() and out.lstrip()[:1].isalnum():
        assert out.startswith(" ") and not out[1:2].isspace(), "one space between the words"
    assert joined.endswith(out) and len(joined) == len(before or "") + len(out)
    # the words are the transcript's: at most the first letter changed case, and only when cased
    core = out.lstrip(" ")
    assert len(core) == len(body)
    changed = [i for i, (a, b) in enumerate(zip(core, body)) if a != b]
    assert len(changed) <= 1
    if changed:
        i = changed[0]
        assert cased and core[i] == body[i].upper() and body[i].isalpha()


@given(text=words)
def test_tidy_is_idempotent(text):
    assert tidy(tidy(text)) == tidy(text)
