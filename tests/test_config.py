from __future__ import annotations

import logging

import pytest

from ctrlspeak import config, errors


def test_precedence_defaults_file_env_flags(isolated_env, tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('model = "canary"\nthreads = 3\noffline = true\n')
    cfg = config.load(path=path, env={})
    assert (cfg.model, cfg.threads, cfg.offline) == ("canary", 3, True)
    cfg = config.load(path=path, env={"CTRLSPEAK_MODEL": "parakeet-v2", "CTRLSPEAK_OFFLINE": "no"})
    assert (cfg.model, cfg.offline, cfg.threads) == ("parakeet-v2", False, 3)
    cfg = config.load({"model": "tiny-en", "threads": None}, path=path, env={"CTRLSPEAK_MODEL": "x"})
    assert (cfg.model, cfg.threads) == ("tiny-en", 3)


def test_missing_file_means_defaults(tmp_path):
    assert config.load(path=tmp_path / "none.toml", env={}) == config.Config()


def test_corrupt_toml_is_a_config_error_naming_the_file(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_bytes(b'model = "unterminated\n')
    with pytest.raises(errors.ConfigError, match="bad.toml"):
        config.load(path=path, env={})
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(errors.ConfigError):
        config.load(path=path, env={})


def test_unknown_keys_warn_and_are_ignored(tmp_path, caplog):
    path = tmp_path / "c.toml"
    path.write_text('modle = "typo"\nmodel = "canary"\n')
    with caplog.at_level(logging.WARNING):
        cfg = config.load(path=path, env={})
    assert cfg.model == "canary"
    assert "modle" in caplog.text


@pytest.mark.parametrize("text", ['threads = "many"', "threads = -1", 'compute_device = "tpu"', "offline = 3"])
def test_invalid_values(tmp_path, text):
    path = tmp_path / "c.toml"
    path.write_text(text + "\n")
    with pytest.raises(errors.ConfigError):
        config.load(path=path, env={})


def test_env_values_are_checked():
    with pytest.raises(errors.ConfigError, match="CTRLSPEAK_THREADS"):
        config.load(path=None, env={"CTRLSPEAK_THREADS": "lots", "CTRLSPEAK_CONFIG": "/nonexistent/x.toml"})


def test_default_threads_is_bounded():
    assert 1 <= config.default_threads() <= 4
    assert config.Config(threads=0).effective_threads == config.default_threads()


# -- values checked for what they mean (issue 10, item 10) ----------------------------------
MEANINGLESS = [
    ("max_record_s", "nan"), ("max_segment_s", "nan"), ("hotkey_window_s", "nan"), ("preroll_s", "nan"),
    ("min_silence_s", "inf"), ("hang_margin_s", "-1000"), ("hang_margin_s", "nan"), ("threads", "99999999"),
    ("log_level", '"bogus"'), ("threads", "2.9"), ("max_record_s", "-inf"), ("keep_alive_minutes", "inf"),
]


@pytest.mark.parametrize("key, toml_value", MEANINGLESS)
def test_a_meaningless_file_value_names_the_key_the_file_and_the_line(tmp_path, key, toml_value, fault_row):
    path = tmp_path / "c.toml"
    path.write_text(f'model = "tiny-en"\n\n{key} = {toml_value}\n')
    with pytest.raises(errors.ConfigError) as caught:
        config.load(path=path, env={})
    err = caught.value
    assert f"config file {path}, line 3: {key} " in err.message, err.message
    assert str(path) in err.hint and "remove that line" in err.hint
    fault_row("#10 config value that means nothing (NaN, inf, -1000, 2.9 threads, a bogus level)",
              "ERR_CONFIG naming the key and its file and line (or its variable)")


@pytest.mark.parametrize("key, value", [(k, v.strip('"')) for k, v in MEANINGLESS])
def test_a_meaningless_env_value_names_the_variable(key, value):
    var = "CTRLSPEAK_" + key.upper()
    with pytest.raises(errors.ConfigError) as caught:
        config.load(path=None, env={var: value, "CTRLSPEAK_CONFIG": "/nonexistent/x.toml"})
    assert caught.value.message.startswith(f"environment variable {var}: {key} "), caught.value.message
    assert var in caught.value.hint


def test_meaningful_edge_values_are_accepted(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('threads = 4.0\nlog_level = "info"\npreroll_s = 0\nkeep_alive_minutes = 0\nhang_margin_s = 3\n')
    cfg = config.load(path=path, env={"CTRLSPEAK_MAX_RECORD_S": "1e3"})
    assert (cfg.threads, cfg.log_level, cfg.preroll_s, cfg.hang_margin_s, cfg.max_record_s) == (4, "INFO", 0.0, 3.0, 1e3)


def test_flags_and_direct_construction_are_checked_too():
    with pytest.raises(errors.ConfigError, match="the command line: threads"):
        config.load({"threads": 10**9}, path=None, env={"CTRLSPEAK_CONFIG": "/nonexistent/x.toml"})
    with pytest.raises(errors.ConfigError, match="max_record_s"):
        config.Config(max_record_s=float("nan"))


# -- the [paste_chord] table (the one table in the file) ------------------------------------------

def test_paste_chord_table_from_the_file_and_the_environment(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('output = "paste"\n\n[paste_chord]\n"org.wezfurlong.wezterm" = "ctrl+shift+v"\nemacs = " Type"\n')
    cfg = config.load(path=path, env={})
    assert cfg.paste_chord == (("org.wezfurlong.wezterm", "ctrl+shift+v"), ("emacs", "type"))
    assert cfg.output == "paste"
    cfg = config.load(path=path, env={"CTRLSPEAK_PASTE_CHORD": "kitty=shift+insert, foot = ctrl+v"})
    assert cfg.paste_chord == (("kitty", "shift+insert"), ("foot", "ctrl+v"))  # env replaces the table
    assert config.load(path=path, env={"CTRLSPEAK_PASTE_CHORD": ""}).paste_chord == ()
    assert config.Config().paste_chord == ()


def test_a_bad_paste_chord_names_the_file_the_line_and_the_app(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('threads = 2\n[paste_chord]\nxterm = "ctrl+v"\nemacs = "alt+v"\n')
    with pytest.raises(errors.ConfigError) as info:
        config.load(path=path, env={})
    message = info.value.message
    assert info.value.code == "ERR_CONFIG"
    assert str(path) in message and "line 4" in message and "paste_chord 'emacs'" in message
    assert "ctrl+shift+v" in message  # the valid choices
    path.write_text("[paste_chord]\nemacs = 3\n")
    with pytest.raises(errors.ConfigError, match="line 2.*emacs"):
        config.load(path=path, env={})
    path.write_text('paste_chord = "emacs=type"\n')
    with pytest.raises(errors.ConfigError, match="line 1.*table"):
        config.load(path=path, env={})


@pytest.mark.parametrize("value", ["kitty", "=type", "kitty=alt+v"])
def test_a_bad_paste_chord_variable_names_the_variable(value):
    with pytest.raises(errors.ConfigError, match="CTRLSPEAK_PASTE_CHORD"):
        config.load(path=None, env={"CTRLSPEAK_PASTE_CHORD": value, "CTRLSPEAK_CONFIG": "/nonexistent/x.toml"})


def test_paste_chord_is_checked_on_direct_construction():
    assert config.Config(paste_chord=(("kitty", "type"),)).paste_chord == (("kitty", "type"),)
    with pytest.raises(errors.ConfigError, match="paste_chord"):
        config.Config(paste_chord=(("kitty", "meta+v"),))
    with pytest.raises(errors.ConfigError, match="paste_chord"):
        config.Config(paste_chord={"kitty": "type"})  # type: ignore[arg-type]
