"""The config's text settings: the [words] table, [profile."APP"] tables, their errors."""
from __future__ import annotations

from pathlib import Path

import pytest

from ctrlspeak import config, errors
from ctrlspeak.text.profile import Profile


def load(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> config.Config:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return config.load(env=env or {}, path=path)


def test_tables(tmp_path):
    cfg = load(tmp_path, 'remove_fillers = true\ntrailing_period = true\n[words]\n"k  eights" = "k8s"\n"kates" = "k8s"\n'
                         '[profile."org.wezfurlong.wezterm"]\noutput = "type"\npaste_chord = "Ctrl+Shift+V"\n'
                         'auto_capitalize = "on"\nwords = { ls = "ls -la" }\nlanguage = "en"\n')
    assert cfg.words == (("k eights", "k8s"), ("kates", "k8s")) and cfg.remove_fillers and cfg.trailing_period
    assert cfg.profile == (Profile("org.wezfurlong.wezterm", output="type", paste_chord="ctrl+shift+v",
                                   auto_capitalize="on", words=(("ls", "ls -la"),), language="en"),)
    assert load(tmp_path, "", env={"CTRLSPEAK_WORDS": "k eights=k8s, tmrw=tomorrow"}).words == \
        (("k eights", "k8s"), ("tmrw", "tomorrow"))


@pytest.mark.parametrize("text, words", [
    ('words = "a=b"\n', "words must be a table ([words] then spoken = \"written\" lines)"),
    ('[words]\nkates = 8\n', "'kates' must be written text in quotes"),
    ('[words]\n" " = "x"\n', "empty spoken form"),
    ('auto_capitalize = "sometimes"\n', "auto_capitalize must be one of auto, on, off"),
    ('trailing_period = 1\n', "trailing_period must be one of auto, on, off"),
    ('[profile.foot]\nauto_capitalize = 1\n', "'foot' auto_capitalize must be one of"),
    ('[profile.foot]\ncolour = "red"\n', "'foot' has an unknown setting 'colour'"),
    ('[profile.foot]\npaste_chord = "ctrl+q"\n', "'foot' paste_chord"),
    ('profile = 3\n', "profile must be a table ([profile.\"APP\"] tables)"),
])
def test_bad_values_say_what_and_where(tmp_path, text, words):
    with pytest.raises(errors.ConfigError) as caught:
        load(tmp_path, text)
    assert caught.value.code == "ERR_CONFIG" and words in caught.value.message
    assert "config file" in caught.value.message


def test_profile_not_from_the_environment(tmp_path):
    with pytest.raises(errors.ConfigError, match="only be set in the config file"):
        load(tmp_path, "", env={"CTRLSPEAK_PROFILE": "foot"})


def test_a_profile_paste_chord_joins_the_paste_chord_table(tmp_path):
    cfg = load(tmp_path, '[paste_chord]\nfoot = "type"\n[profile.foot]\npaste_chord = "ctrl+v"\n'
                         '[profile.Kitty]\npaste_chord = "shift+insert"\n')
    assert cfg.paste_chord == (("foot", "type"), ("Kitty", "shift+insert")), "[paste_chord] wins"
    typed = load(tmp_path, '[profile.xterm]\noutput = "type"\n[profile.gedit]\noutput = "paste"\n')
    assert typed.paste_chord == (), "an output mode is not a chord: the output reads it"


def test_the_daemons_output_gets_each_profiles_output_mode(tmp_path):
    from ctrlspeak.daemon import wiring

    cfg = load(tmp_path, '[profile.xterm]\noutput = "type"\n[profile.gedit]\noutput = "stdout"\n'
                         '[profile.foot]\ntrailing_period = true\n')
    out = wiring.make_output(cfg, None, None)
    assert out._app_outputs == (("xterm", "type"), ("gedit", "stdout"))


def test_transcribe_prints_through_the_pipeline_and_keeps_the_raw(tmp_path):
    from ctrlspeak.commands.transcribe import through_pipeline

    cfg = load(tmp_path, 'spoken_punctuation = true\n[words]\n"cube control" = "kubectl"\n')
    results = [{"file": "a.wav", "text": "run cube control period"}, {"file": "b.wav", "text": "As is."},
               {"file": "c.wav", "text": "as is"}, {"file": "d.wav", "error": RuntimeError()}]
    through_pipeline(cfg, results)
    assert results[0]["text"] == "Run kubectl." and results[0]["raw_text"] == "run cube control period"
    assert results[1] == {"file": "b.wav", "text": "As is."}  # a model that writes case: as it is
    assert results[2] == {"file": "c.wav", "text": "As is.", "raw_text": "as is"} and "text" not in results[3]
