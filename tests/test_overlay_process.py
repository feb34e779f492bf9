"""The daemon's overlay process follows ``live`` through config reloads (ctrlspeak/daemon/wiring.py)."""
from __future__ import annotations

import subprocess

from ctrlspeak import config
from ctrlspeak.daemon import wiring


class _Proc:
    def __init__(self, args, **_kw) -> None:
        self.args, self.pid, self.code = args, 4242, None

    def poll(self):
        return self.code

    def terminate(self) -> None:
        self.code = -15

    def wait(self, timeout=None):
        return self.code


def test_a_reload_that_turns_live_on_or_off_starts_or_stops_it_and_a_crashed_one_comes_back(monkeypatch, tmp_path):
    started: list[_Proc] = []
    monkeypatch.setattr(subprocess, "Popen", lambda args, **kw: started.append(_Proc(args, **kw)) or started[-1])
    monkeypatch.setenv("DISPLAY", ":99")
    overlay = wiring.Overlay(tmp_path / "control.sock")
    overlay.apply(config.Config(live=False))
    assert started == []
    overlay.apply(config.Config(live=True))
    assert len(started) == 1 and started[0].args[-3:] == ["ctrlspeak.desktop.overlay", "--socket",
                                                          str(tmp_path / "control.sock")]
    overlay.apply(config.Config(live=True))
    assert len(started) == 1, "running already: left alone"
    started[0].code = 1  # it crashed
    overlay.apply(config.Config(live=True))
    assert len(started) == 2
    overlay.apply(config.Config(live=False))
    assert started[1].code == -15, "live turned off: stopped"
    monkeypatch.delenv("DISPLAY")
    overlay.apply(config.Config(live=True))
    assert len(started) == 2, "no display: no overlay"
