"""The daemon's deliveries go through the text pipeline; history keeps the model's text too;
a config reload (SIGHUP, which `ctrlspeak words` sends) changes the dictionary at once."""
from __future__ import annotations

import numpy as np
import pytest

from ctrlspeak import config
from ctrlspeak.daemon import core as daemon_mod
from tests import fakes
from tests.fakes import FakeClock, FakeOutput, FakeWorkers, command, pump, speech


#: the config's text defaults (the fakes turn them off)
DEFAULTS = dict(auto_capitalize="auto", trailing_period="auto")


@pytest.fixture
def stores(isolated_env, workers):
    made = fakes.DaemonsWithStores()
    yield lambda **cfg: made(clock=FakeClock(), **cfg)
    made.close()


def dictate(d: daemon_mod.Daemon, audio: np.ndarray | None = None) -> None:
    started = command(d, "start")
    pump(d, started.done)
    d.post(daemon_mod.AudioIn(speech() if audio is None else audio))
    pump(d, d._inbox.empty)
    pump(d, command(d, "stop").done)
    pump(d, lambda: not d.recording and not d.dictations.finishing and d._inbox.empty())


def rows(d: daemon_mod.Daemon) -> list[tuple[str, str]]:
    return [(e.text, e.raw) for e in reversed(d.parts.history.recent())]


def test_the_dictionary_and_spoken_marks_reach_the_cursor_and_history_keeps_both(stores, workers: FakeWorkers):
    d, _ = stores(words=(("cube control", "kubectl"),), spoken_punctuation=True, **DEFAULTS)
    workers.answer = lambda: "run cube control new line done"
    dictate(d)
    assert d.parts.output.texts == ["Run kubectl\nDone."]
    assert rows(d) == [("Run kubectl\nDone.", "run cube control new line done")]


def test_typing_while_speaking_sends_each_piece_through_it(stores, workers: FakeWorkers):
    d, _ = stores(min_silence_s=0.3, live_typing=True, words=(("bug", "BUG"),), **DEFAULTS)
    said = iter(["the team found a bug", "in the code"])
    workers.answer = lambda: next(said)
    dictate(d, np.concatenate([speech(2.5), np.zeros(16000, np.float32), speech(1.0)]))
    # the default capitals and period for a model that writes none; the period only at the end
    assert d.parts.output.texts == ["The team found a BUG", " in the code."]
    assert rows(d) == [("The team found a BUG in the code.", "the team found a bug in the code")]


def test_a_dictation_typed_whole_while_speaking_gets_its_period_at_the_stop(stores, workers: FakeWorkers):
    d, _ = stores(min_silence_s=0.3, live_typing=True, **DEFAULTS)
    said = iter(["the team found a bug", "in the code"])
    workers.answer = lambda: next(said)
    gap = np.zeros(16000, np.float32)
    dictate(d, np.concatenate([speech(2.5), gap, speech(1.0), gap]))
    assert d.parts.output.texts == ["The team found a bug", " in the code", "."]
    assert rows(d) == [("The team found a bug in the code.", "the team found a bug in the code")]


def test_a_reload_changes_the_dictionary_for_the_next_dictation(stores, workers: FakeWorkers):
    d, _ = stores(**DEFAULTS)  # what the reloaded file (no text settings) gives
    workers.answer = lambda: "see you tomorrow"
    dictate(d)
    path = config.config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('[words]\ntomorrow = "tmrw"\n')
    d.reload_config()
    d.parts.output = FakeOutput()  # the reload made a real one
    dictate(d)
    assert d.parts.output.texts == [" See you tmrw."], "spaced after the first dictation into the same window"
    assert [text for text, _ in rows(d)] == ["See you tomorrow.", "See you tmrw."]


class FocusedOutput(FakeOutput):
    """A FakeOutput whose focused app is ``app`` (the real Output asks the focus tools)."""

    app: tuple[str, ...] = ()

    def app_names(self) -> tuple[str, ...]:
        return self.app


def test_the_focused_apps_profile_and_the_terminal_default_apply(stores, workers: FakeWorkers):
    from ctrlspeak.text.profile import Profile

    d, _ = stores(auto_capitalize="on", trailing_period="on",
                  profile=(Profile("Code", words=(("gee", "git"),), trailing_period="off"),))
    workers.answer = lambda: "gee status"
    for window, (app, landed) in enumerate(((("code", "Code"), "Git status"), (("foot",), "gee status"),
                                            (("gedit",), "Gee status."))):
        d.parts.output = FocusedOutput(window=str(window))  # each its own window: a fresh start
        d.parts.output.app = app
        dictate(d)
        assert d.parts.output.texts[-1].strip() == landed, app


def test_output_app_names_comes_from_the_focus_query():
    from ctrlspeak.desktop.focus import FocusedApp
    from ctrlspeak.desktop.output import Output

    out = Output("paste", key_guard=None, env={"DISPLAY": ":9"}, platform="linux",
                 focus=lambda: FocusedApp(("foot",), "x11"))
    assert out.app_names() == ("foot",)
    assert Output("stdout", key_guard=None, env={"DISPLAY": ":9"}, platform="linux",
                  focus=lambda: FocusedApp(("foot",), "x11")).app_names() == ()
    assert Output("paste", key_guard=None, env={}, platform="linux", focus=lambda: None).app_names() == ()


def test_a_profiles_language_is_the_recordings_language_where_it_starts(stores, workers: FakeWorkers):
    """``[profile."APP"] language`` reaches the worker with every segment of a recording begun
    in that app; elsewhere the top-level language does."""
    from ctrlspeak.text.profile import Profile

    d, _ = stores(language="en", profile=(Profile("Thunderbird", language="de"),))
    workers.answer = lambda: "hallo"
    for window, (app, language) in enumerate(((("thunderbird",), "de"), (("gedit",), "en"))):
        d.parts.output = FocusedOutput(window=str(window))
        d.parts.output.app = app
        before = len(workers.instances[-1].requests)
        dictate(d)
        sent = workers.instances[-1].requests[before:]
        assert sent and {options.language for _, options in sent} == {language}, app


def test_without_a_profile_language_the_focus_is_not_asked(stores, workers: FakeWorkers):
    from ctrlspeak.text.profile import language_for

    asked: list[int] = []

    def names() -> tuple[str, ...]:
        asked.append(1)
        return ("x",)

    from ctrlspeak.text.profile import Profile

    assert language_for((Profile("x", output="type"),), names, "fr") == "fr" and not asked
    assert language_for((Profile("x", language="de"),), names, "fr") == "de" and asked
    assert language_for((Profile("y", language="de"),), names, None) is None
