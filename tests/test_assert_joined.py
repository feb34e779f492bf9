"""The long-dictation end-to-end check must catch join errors, and any wrong word."""
from __future__ import annotations

import pytest

from tests.desktop.daemon_proc import LONG, assert_joined_exactly

WANT = " ".join(LONG)


def test_passes():
    assert_joined_exactly(WANT.split(), LONG)


@pytest.mark.parametrize("got", [
    WANT.replace("night call", "night night call"),   # doubled at a join
    WANT.replace("night call", "call"),                # dropped at a join
    WANT.replace("night call", "nightcall"),           # merged at a join
    WANT.replace("call my", "all my"),                 # a segment's start clipped
    WANT.replace("morning we", "morning wee"),         # a segment's start garbled
    WANT.replace(" station ", " stasion ").replace("park", "bark"),  # two words wrong
    WANT.replace("the station", "station"),           # dropped inside
    WANT.replace(" station ", " stasion "),           # one word misheard inside a sentence
])
def test_fails(got):
    with pytest.raises(AssertionError):
        assert_joined_exactly(got.split(), LONG)
