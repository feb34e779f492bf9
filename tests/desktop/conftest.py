"""Fixtures for end-to-end tests on the virtual desktop (see harness.py for the stack).

`desktop` is one stack per test module, reset before each test (notifications since the test began,
empty clipboard, silent microphone). `paste_target` is a fresh, focused Tk text window per test.
"""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.desktop.harness import STACK_TOOLS, Desktop, PasteTarget, require


@pytest.fixture(scope="module")
def desktop_stack() -> Iterator[Desktop]:
    require(STACK_TOOLS)
    with Desktop() as stack:
        yield stack


@pytest.fixture
def desktop(desktop_stack: Desktop) -> Desktop:
    desktop_stack.reset()
    return desktop_stack


@pytest.fixture
def paste_target(desktop: Desktop) -> Iterator[PasteTarget]:
    require((), modules=("tkinter",))
    with PasteTarget(desktop) as target:
        target.focus()
        yield target
