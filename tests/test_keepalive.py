"""The keep-alive's timing (pure) and its setting in the one Config."""
from __future__ import annotations

import pytest

from ctrlspeak import config, errors
from ctrlspeak.daemon.keepalive import KeepAlive


def test_due_after_the_idle_period_counted_from_the_first_idle_moment():
    k = KeepAlive(2.0)  # 120 s
    k.note(100.0, idle=True)
    k.note(150.0, idle=True)  # still idle: the count keeps running from 100
    assert k.wait_s(150.0) == pytest.approx(70.0)
    assert not k.due(219.9)
    assert k.due(220.0)


def test_a_busy_moment_restarts_the_count_and_blocks_while_busy():
    k = KeepAlive(1.0)
    k.note(0.0, idle=True)
    k.note(50.0, idle=False)  # a recording
    assert k.wait_s(50.0) is None and not k.due(1e9), "nothing is due while busy"
    k.note(80.0, idle=True)
    assert k.wait_s(80.0) == pytest.approx(60.0)
    assert not k.due(139.0) and k.due(140.0)


def test_restart_counts_a_full_period_again():
    k = KeepAlive(1.0)
    k.note(0.0, idle=True)
    assert k.due(60.0)
    k.restart(60.0)
    assert k.wait_s(60.0) == pytest.approx(60.0)


def test_zero_means_never_and_the_loop_blocks_without_a_timeout():
    k = KeepAlive(0.0)
    k.note(0.0, idle=True)
    assert not k.enabled
    assert k.wait_s(1e9) is None and not k.due(1e9)


def test_config_default_file_env_and_validation(tmp_path):
    assert config.Config().keep_alive_minutes == 0.0
    path = tmp_path / "config.toml"
    path.write_text("keep_alive_minutes = 15\n")
    assert config.load(env={}, path=path).keep_alive_minutes == 15.0
    assert config.load(env={"CTRLSPEAK_KEEP_ALIVE_MINUTES": "0.5"}, path=path).keep_alive_minutes == 0.5
    for bad in ("-1", "nan", "inf"):
        with pytest.raises(errors.ConfigError, match="keep_alive_minutes"):
            config.load(env={"CTRLSPEAK_KEEP_ALIVE_MINUTES": bad}, path=tmp_path / "none.toml")
    with pytest.raises(errors.ConfigError):
        config.load(env={"CTRLSPEAK_KEEP_ALIVE_MINUTES": "soon"}, path=tmp_path / "none.toml")
