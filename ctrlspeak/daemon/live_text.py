"""Live text: what a dictation has said so far, as its segments come back from the worker.

Pure bookkeeping, one :class:`LiveText` per recording, owned by its session. Segment ``i``'s
text is *final* once it and every segment before it are back (a failed segment counts as back,
with no text): final text only ever grows at its end, so a view of it never jumps. What came
back past a segment still in the worker, and the open segment's provisional decoding (its
*tail*), are *tentative*: they may still change or move. Once every segment is back the final
text is exactly the dictation's joined text (:func:`~ctrlspeak.audio.segment.join_texts`).

Each change gives a :class:`Partial` with an id of its own (the session's id and a sequence
number), for ``status --follow`` and the overlay; an unchanged view gives none.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ctrlspeak.audio.segment import join_texts


@dataclass(frozen=True)
class Partial:
    session: str
    seq: int
    final: str
    tentative: str

    @property
    def id(self) -> str:
        return f"{self.session}.{self.seq}"

    def to_json(self) -> dict[str, Any]:
        return {"event": "partial", "id": self.id, "session": self.session, "seq": self.seq,
                "final": self.final, "tentative": self.tentative}


class LiveText:
    def __init__(self, session: str) -> None:
        self._session = session
        self._texts: dict[int, str | None] = {}  # segments back from the worker (None: failed)
        self._next = 0  # the first segment not back yet: everything before it is final
        self._tail: tuple[int, str] | None = None  # the open segment's index and provisional text
        self._seq = 0
        self._shown: tuple[str, str] | None = None

    def segment(self, index: int, text: str | None) -> Partial | None:
        """Segment ``index`` is back with ``text`` (None: it failed)."""
        self._texts[index] = text
        while self._next in self._texts:
            self._next += 1
        if self._tail is not None and self._tail[0] <= index:
            self._tail = None
        return self._view()

    def tail(self, index: int, text: str) -> Partial | None:
        """The open segment ``index`` decoded so far: shown until that segment is back."""
        if index in self._texts:
            return None  # it came back meanwhile: the real text wins
        self._tail = (index, text)
        return self._view()

    @property
    def final(self) -> str:
        return join_texts([self._texts[i] or "" for i in range(self._next)])

    def _view(self) -> Partial | None:
        later = [self._texts[i] or "" for i in sorted(self._texts) if i > self._next]
        if self._tail is not None:
            later.append(self._tail[1])
        shown = (self.final, join_texts(later))
        if shown == self._shown:
            return None
        self._shown = shown
        self._seq += 1
        return Partial(self._session, self._seq, *shown)
