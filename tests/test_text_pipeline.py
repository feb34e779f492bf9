"""The whole pipeline: its order, the profiles, and that it keeps spacing.fit's rules."""
from __future__ import annotations

import dataclasses
from pathlib import Path

from hypothesis import given, strategies as st

from ctrlspeak import config
from ctrlspeak.desktop import spacing
from ctrlspeak.text import context
from ctrlspeak.text.context import Context, TextSettings
from ctrlspeak.text.pipeline import apply
from ctrlspeak.text.profile import Profile
from ctrlspeak.text.tokens import words


OFF = TextSettings(auto_capitalize="off", trailing_period="off")


def test_defaults_write_capitals_and_a_period_only_for_a_model_that_writes_none():
    assert apply("hello   world ") == "Hello world."
    assert apply("Hello, World.") == "Hello, World."
    assert apply("ok then", Context(TextSettings(), app=("foot",))) == "ok then"  # a terminal
    assert apply("hello   world ", Context(OFF)) == "hello world"


def test_all_steps_in_order():
    ctx = Context(TextSettings(words=(("cube control", "kubectl"), ("um", "UM")), spoken_punctuation=True,
                               remove_fillers=True, auto_capitalize="auto", trailing_period="on"))
    # fillers before the dictionary (a filler is never a dictionary word), marks, capitals, the period
    assert apply("um run cube control comma then new line i am done", ctx) == "Run kubectl, then\nI am done."


def test_auto_capitals_only_for_a_model_without_them():
    ctx = Context(TextSettings(auto_capitalize="auto", trailing_period="on"))
    assert apply("hello there", ctx) == "Hello there."
    assert apply("hello There", ctx) == "hello There."
    assert apply("and so on", Context(ctx.settings, before="we went")) == "and so on."


def test_terminal_gets_no_capitals_or_period_unless_its_profile_says():
    settings = TextSettings(auto_capitalize="on", trailing_period="on", trailing_space=True)
    assert apply("ls minus l", Context(settings, app=("foot",))) == "ls minus l "
    assert apply("ls", Context(settings, app=("Gedit", "gedit"))) == "Ls. "
    profiles = (Profile("FOOT", trailing_period="on", words=(("minus l", "-l"),)),)
    assert apply("ls minus l", Context(settings, profiles, app=("foot",))) == "ls -l. "


def test_pieces_typed_while_speaking_get_the_period_and_the_trailing_space_at_the_end_only():
    from ctrlspeak.text.pipeline import close, insert

    settings = TextSettings(auto_capitalize="on", trailing_period="on", trailing_space=True)
    first = insert("the team found", Context(settings), ends=False)
    second = insert("a bug", Context(settings, before=first), ends=False)
    assert first + second == "The team found a bug", "no space typed after a piece: the period goes there"
    assert close("the team found a bug", Context(settings, before=first + second)) == ". "
    assert close("ok.", Context(settings, before="Ok. ")) == "", "already closed and spaced: nothing"
    off = dataclasses.replace(settings, trailing_period="off")
    assert close("a bug", Context(off, before="A bug")) == " "


def test_profile_words_over_the_top_level():
    settings = dataclasses.replace(OFF, words=(("gee", "G"), ("bee", "B")))
    profiles = (Profile("code", words=(("gee", "git"),)),)
    assert apply("gee bee", Context(settings, profiles, app=("Code",))) == "git B"
    assert apply("gee bee", Context(settings, profiles, app=("other",))) == "G B"


def test_from_config(tmp_path: Path):
    path = tmp_path / "config.toml"
    path.write_text('spoken_punctuation = true\nauto_capitalize = "auto"\n[words]\n"k eights" = "k8s"\n'
                    '[profile."kitty"]\nspoken_punctuation = false\n')
    ctx = context.from_config(config.load(env={}, path=path))
    assert apply("use k eights period", ctx) == "Use k8s."
    assert apply("use k eights period", Context(ctx.settings, ctx.profiles, app=("kitty",))) == "use k8s period"


_word = st.text(alphabet="bcdfgkv", min_size=1, max_size=5)
_marks = st.sampled_from(["um", "uh", "period", "comma", "new line", "question mark"])
_settings = st.builds(TextSettings, spoken_punctuation=st.booleans(), remove_fillers=st.booleans(),
                      auto_capitalize=st.sampled_from(["auto", "on", "off"]), trailing_period=st.sampled_from(["auto", "on", "off"]))


@given(st.lists(st.one_of(_word, _marks), max_size=14), _settings, st.one_of(st.none(), st.just("before.")))
def test_drops_only_what_it_was_asked_to(tokens, settings, before):
    text = " ".join(tokens)
    out = apply(text, Context(settings, before=before))
    dropped = set()
    if settings.remove_fillers:
        dropped |= {"um", "uh"}
    if settings.spoken_punctuation:
        dropped |= {"period", "comma", "new", "line", "question", "mark"}
    assert words(out) == [w for w in words(text) if w not in dropped]


@given(st.lists(st.one_of(_word, st.sampled_from(["um", "comma", "period"])), max_size=14), _settings)
def test_idempotent_without_a_dictionary(tokens, settings):
    once = apply(" ".join(tokens), Context(settings))
    assert apply(once, Context(settings)) == once


@given(st.lists(_word, min_size=1, max_size=8), st.lists(_word, min_size=1, max_size=8))
def test_spacing_rules_kept_between_dictations(first, second):
    """Two dictations into one window: one space between them, a capital after a sentence end."""
    ctx = Context(TextSettings(auto_capitalize="on", trailing_period="on"))
    a = apply(" ".join(first), ctx)
    b_text = apply(" ".join(second), Context(ctx.settings, before=a))
    joined = a + spacing.fit(a, b_text, cased=True)
    assert joined == a + " " + b_text and b_text[0].isupper() and a.endswith(".")
    plain = Context(OFF)
    a2 = apply(" ".join(first), plain)
    assert a2 + spacing.fit(a2, apply(" ".join(second), plain), cased=False) == " ".join(first + second)


def test_spoken_sentence_ends_get_capitals_from_a_cased_model_even_with_capitals_off():
    ctx = Context(dataclasses.replace(OFF, spoken_punctuation=True))
    assert apply("Hello period how are you question mark", ctx) == "Hello. How are you?"
    assert apply("hello period how are you", ctx) == "hello. how are you"
