"""The tray sink with a fake pystray that behaves as the real one does: a title set before
the icon is visible is kept but never shown (the real X11 race behind a CI failure)."""
from __future__ import annotations

import sys
import threading
import types

import pytest

from ctrlspeak.daemon.status import StatusEvent
from tests.fakes import wait

pytest.importorskip("PIL")


class FakeIcon:
    made: list[FakeIcon] = []

    def __init__(self, name, icon, title, menu) -> None:
        self._title, self.icon, self.visible = title, icon, False
        self.shown_titles = [title]  # what the X window's name has been
        self.gate = threading.Event()
        self.stopped = threading.Event()
        FakeIcon.made.append(self)

    @property
    def title(self) -> str:
        return self._title

    @title.setter
    def title(self, value: str) -> None:
        if value != self._title:
            self._title = value
            if self.visible:  # pystray's own rule
                self.shown_titles.append(value)

    def run(self, setup=None) -> None:
        self.gate.wait(5)
        (setup or (lambda icon: setattr(icon, "visible", True)))(self)
        self.stopped.wait(5)

    def stop(self) -> None:
        self.stopped.set()


@pytest.fixture
def tray(monkeypatch):
    fake = types.ModuleType("pystray")
    fake.Icon = FakeIcon
    fake.MenuItem = lambda *a, **k: (a, k)
    fake.Menu = type("Menu", (), {"SEPARATOR": None, "__init__": lambda self, *items: None})
    monkeypatch.setitem(sys.modules, "pystray", fake)
    FakeIcon.made = []
    from ctrlspeak.desktop.tray import Tray

    t = Tray(on_toggle=lambda: None, on_model=lambda n: None, on_quit=lambda: None, models=["tiny-en"])
    t.start()
    yield t
    t.stop()


def test_an_event_before_the_icon_is_shown_is_shown_with_it(tray):
    icon = FakeIcon.made[0]
    tray(StatusEvent("loading", "loading tiny-en", model="tiny-en"))
    tray(StatusEvent("ready", "tiny-en ready", model="tiny-en"))
    assert icon.shown_titles == ["ctrlspeak: starting"], "nothing can show before the icon does"
    icon.gate.set()
    wait(lambda: icon.shown_titles[-1].startswith("ctrlspeak: ready"))


def test_events_after_the_icon_is_shown_update_it(tray):
    icon = FakeIcon.made[0]
    icon.gate.set()
    wait(lambda: icon.visible)
    tray(StatusEvent("recording", "listening", model="tiny-en"))
    assert icon.shown_titles[-1].startswith("ctrlspeak: recording"), icon.shown_titles
