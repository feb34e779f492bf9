"""The long-dictation end-to-end check must catch join errors, and any wrong word."""
from __future__ import annotations

import pytest

from tests.desktop.daemon_proc import LONG, assert_joined_exactly

WANT = " ".join(LONG)


def test_passes():
    assert_joined_exactly(WANT.split(), LONG)


@pytest.mark.parametrize("got", [
    WANT.replace("afternoon call", "afternoon afternoon call"),  # doubled at a join
    WANT.replace("afternoon call", "call"),                # dropped at a join
    WANT.replace("afternoon call", "afternooncall"),       # merged at a join
    WANT.replace("call my", "all my"),                     # a segment's start clipped
    WANT.replace("morning we", "morning wee"),             # a segment's start garbled
    WANT.replace(" garden ", " gardin ").replace("park", "bark"),  # two words wrong
    WANT.replace("the garden", "garden"),                  # dropped inside
    WANT.replace(" garden ", " gardin "),                  # one word misheard inside a sentence
])
def test_fails(got):
    assert got != WANT  # each case changes the sentences (LONG may be swapped for another model's)
    with pytest.raises(AssertionError):
        assert_joined_exactly(got.split(), LONG)
