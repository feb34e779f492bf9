"""Retry delays that double up to a cap: the worker's restarts and the model download share them.

Pure (no clock, no sleeping), so tests drive it with plain calls.
"""
from __future__ import annotations


class Backoff:
    """Delays that double from ``first`` up to ``cap``; :meth:`reset` after a success."""

    def __init__(self, first: float = 1.0, cap: float = 30.0) -> None:
        self.first, self.cap = first, cap
        self._next = first

    def next(self) -> float:
        delay, self._next = self._next, min(self.cap, self._next * 2)
        return delay

    def reset(self) -> None:
        self._next = self.first
