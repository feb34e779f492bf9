"""Fixtures for tests on a real headless Wayland compositor (see sway.py for the session).

`sway` is one session per test module (checked alive before each test); `gtk_target` and
`foot_target` are fresh, focused windows per test. The desktop stack's fixtures (PulseAudio with
the virtual microphone, D-Bus, the daemon starter) come from tests/desktop/conftest.py: the
end-to-end test needs the microphone, and the compositor needs nothing from X.
"""
from __future__ import annotations

import functools
import subprocess
from collections.abc import Iterator

import pytest

from tests.desktop.conftest import desktop, desktop_stack, start_daemon  # noqa: F401 - fixtures
from tests.desktop.harness import in_ci, require
from tests.wayland.sway import SWAY_TOOLS, SYSTEM_PYTHON, FootTarget, GtkTarget, SwaySession


@functools.cache
def _gtk_problem() -> str | None:
    probe = subprocess.run([SYSTEM_PYTHON, "-c", "import gi; gi.require_version('Gtk', '3.0')"],
                           capture_output=True, text=True, timeout=60)
    if probe.returncode == 0:
        return None
    return f"wayland test needs python3-gi and gir1.2-gtk-3.0 for {SYSTEM_PYTHON}: {probe.stderr.strip()[-200:]}"


def _require_gtk() -> None:
    """Like harness.require: skip here, fail in CI, where a missing package is a broken setup."""
    problem = _gtk_problem()
    if problem and in_ci():
        pytest.fail(problem + " (CI is set, so this is an error, not a skip)", pytrace=False)
    if problem:
        pytest.skip(problem)


@pytest.fixture(scope="module")
def sway_session() -> Iterator[SwaySession]:
    require(SWAY_TOOLS)
    with SwaySession() as session:
        yield session


@pytest.fixture
def sway(sway_session: SwaySession) -> SwaySession:
    sway_session.check()
    return sway_session


@pytest.fixture
def gtk_target(sway: SwaySession) -> Iterator[GtkTarget]:
    _require_gtk()
    with GtkTarget(sway) as target:
        target.focus()
        yield target


@pytest.fixture
def foot_target(sway: SwaySession) -> Iterator[FootTarget]:
    require(("foot",))
    with FootTarget(sway) as target:
        target.focus()
        yield target
