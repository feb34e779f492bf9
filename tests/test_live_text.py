"""Live text bookkeeping (ctrlspeak/daemon/live_text.py): final text only grows at its end, what
is tentative is set apart, and the last view is exactly the dictation's joined text."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ctrlspeak.audio.segment import join_texts
from ctrlspeak.daemon.live_text import LiveText


def test_segments_in_order_grow_the_final_text():
    live = LiveText("s1")
    first = live.segment(0, "the team found")
    assert (first.final, first.tentative, first.id) == ("the team found", "", "s1.1")
    second = live.segment(1, " a bug ")
    assert (second.final, second.tentative, second.id) == ("the team found a bug", "", "s1.2")
    assert second.to_json() == {"event": "partial", "id": "s1.2", "session": "s1", "seq": 2,
                                "final": "the team found a bug", "tentative": ""}


def test_a_segment_back_before_an_earlier_one_is_tentative_until_the_gap_closes():
    live = LiveText("s")
    early = live.segment(1, "in the code")
    assert (early.final, early.tentative) == ("", "in the code")
    closed = live.segment(0, "the team found a bug")
    assert (closed.final, closed.tentative) == ("the team found a bug in the code", "")


def test_a_failed_segment_does_not_hold_the_rest_back():
    live = LiveText("s")
    live.segment(1, "second")
    view = live.segment(0, None)
    assert (view.final, view.tentative) == ("second", "")


def test_the_open_segments_tail_is_tentative_and_gives_way_to_its_real_text():
    live = LiveText("s")
    live.segment(0, "hello")
    tail = live.tail(1, "wor")
    assert (tail.final, tail.tentative) == ("hello", "wor")
    assert live.tail(1, "wor") is None, "an unchanged view is not sent again"
    real = live.segment(1, "world")
    assert (real.final, real.tentative) == ("hello world", "")
    assert live.tail(1, "stale decoding") is None, "a tail for a segment already back is ignored"


def test_an_empty_segment_adds_no_space():
    live = LiveText("s")
    live.segment(0, "one")
    assert live.segment(1, "") is None
    assert live.segment(2, "two").final == "one two"


@settings(max_examples=200, deadline=None)
@given(texts=st.lists(st.one_of(st.none(), st.text(alphabet="ab ", max_size=6)), min_size=1, max_size=8),
       data=st.data())
def test_in_any_order_final_only_grows_and_ends_as_the_joined_text(texts, data):
    order = data.draw(st.permutations(range(len(texts))))
    live = LiveText("s")
    finals, seqs = [""], []
    for i in order:
        if data.draw(st.booleans()):
            tail = live.tail(i, "tentative words")
            if tail is not None:
                finals.append(tail.final)
                seqs.append(tail.seq)
        view = live.segment(i, texts[i])
        if view is not None:
            finals.append(view.final)
            seqs.append(view.seq)
    assert all(b.startswith(a) for a, b in zip(finals, finals[1:])), finals
    assert seqs == sorted(set(seqs))
    assert live.final == join_texts([t or "" for t in texts])


def test_the_pacer_waits_for_an_idle_worker_its_interval_and_a_decode_in_flight():
    from ctrlspeak.daemon.live_decode import LivePacer

    now = [100.0]
    pacer = LivePacer(0.5, lambda: now[0])
    assert not pacer.due(worker_idle=True, open_s=0.2), "a fifth of a second holds no word yet"
    assert not pacer.due(worker_idle=False, open_s=2.0), "a segment at the worker comes first"
    assert pacer.due(worker_idle=True, open_s=2.0)
    pacer.sent()
    now[0] += 5.0
    assert not pacer.due(True, 2.0), "one decode in flight at a time"
    pacer.back(compute_s=0.05)
    assert pacer.due(True, 2.0), "back, and its interval is over"
    pacer.sent()
    now[0] += 0.125
    pacer.back(compute_s=0.125)
    now[0] += 0.25
    assert not pacer.due(True, 2.0), "not before interval_s after the last one was sent"
    now[0] += 0.125
    assert pacer.due(True, 2.0)


def test_a_slow_machine_skips_partials_rather_than_falling_behind():
    from ctrlspeak.daemon.live_decode import LivePacer

    now = [0.0]
    pacer = LivePacer(0.5, lambda: now[0], budget=0.5)
    pacer.sent()
    now[0] += 0.75
    pacer.back(compute_s=0.75)  # a decode costs more than the interval
    now[0] += 0.5
    assert not pacer.due(True, 5.0), "at most half the worker's time goes to partials"
    now[0] += 0.25
    assert pacer.due(True, 5.0)
    pacer.back(compute_s=None)  # nothing in flight: ignored
    assert pacer.due(True, 5.0)


def test_the_live_line_keeps_the_end_and_sets_the_tentative_tail_apart():
    from ctrlspeak.daemon.status import live_line

    event = {"final": "the team found a bug", "tentative": "in the"}
    assert live_line(event, 80) == "the team found a bug [in the]"
    assert live_line({"final": "", "tentative": "hello"}, 80) == "[hello]"
    assert live_line({"final": "hello", "tentative": ""}, 80) == "hello"
    short = live_line(event, 12, ("<", ">"))
    assert short == "… bug <in the>" and len(short) == 12 + 2, "12 characters and the marks"
    assert live_line(event, 5, ("<", ">")) == "…< the>", "only the tentative part fits"


class _Tty:
    def __init__(self, tty: bool) -> None:
        self.tty, self.text = tty, ""

    def isatty(self) -> bool:
        return self.tty

    def write(self, s: str) -> None:
        self.text += s

    def flush(self) -> None:
        pass


def test_the_console_shows_live_text_on_a_terminal_and_never_in_a_log():
    from ctrlspeak.daemon.status import ConsoleLine

    event = {"final": "my bank password", "tentative": "is"}
    terminal, log = _Tty(True), _Tty(False)
    ConsoleLine(terminal).live_text(event)
    ConsoleLine(log).live_text(event)
    assert terminal.text.startswith("\r\x1b[2K") and "my bank password \x1b[2mis\x1b[22m" in terminal.text
    assert log.text == ""
