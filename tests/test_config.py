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
