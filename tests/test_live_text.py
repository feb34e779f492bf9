"""Live text bookkeeping (ctrlspeak/daemon/live_text.py): final text only grows at its end, what
is tentative is set apart, and the last view is exactly the dictation's joined text; the pace of
live decodes, and the pieces a streaming model gets."""
from __future__ import annotations

import numpy as np
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


def test_the_chunk_is_the_settings_when_the_model_has_it_else_the_pick_and_a_warning():
    from ctrlspeak.daemon.live_decode import pick_chunk_ms

    tiny, nemotron = (160, 560, 1120), (80, 160, 560, 1120)
    assert pick_chunk_ms(0, (), "cpu", 4_000_000) == (0, None), "an offline model does not stream"
    assert pick_chunk_ms(0, tiny, "cpu", 4_000_000) == (160, None)
    assert pick_chunk_ms(0, nemotron, "cpu", 600_000_000) == (560, None), "a big encoder on a CPU"
    assert pick_chunk_ms(0, nemotron, "cuda", 600_000_000) == (160, None)
    assert pick_chunk_ms(1120, tiny, "cpu", 4_000_000) == (1120, None)
    assert pick_chunk_ms(0, (80,), "cpu", 4_000_000) == (80, None), "the only size there is"
    chunk, warning = pick_chunk_ms(300, nemotron, "cpu", 4_000_000)
    assert chunk == 160
    assert warning == "stream_chunk_ms = 300 is not a chunk size of this model (80, 160, 560, 1120 ms); streaming in 160 ms"


def test_the_stream_feed_sends_each_sample_once_in_whole_chunks_and_restarts_a_new_segment():

    from ctrlspeak.daemon.live_decode import MAX_PIECE_S, StreamFeed

    @given(st.lists(st.integers(0, 30_000), min_size=1, max_size=30), st.sampled_from([80, 160, 560]))
    def check(growth, chunk_ms):
        feed, pending, got = StreamFeed(), np.zeros(0, np.float32), []
        for n in growth:
            pending = np.concatenate([pending, np.arange(pending.size, pending.size + n, dtype=np.float32)])
            piece = feed.next("s.0", pending, chunk_ms)
            if piece is None:
                assert pending.size - sum(a.size for a, _ in got) < chunk_ms * 16, "a whole chunk waits no longer"
                continue
            audio, p = piece
            assert p.start == sum(a.size for a, _ in got) and audio[0] == p.start, "it follows the last piece"
            assert chunk_ms * 16 <= audio.size <= max(chunk_ms * 16, MAX_PIECE_S * 16000)
            got.append(piece)
        sent = np.concatenate([a for a, _ in got]) if got else np.zeros(0, np.float32)
        assert np.array_equal(sent, pending[:sent.size]), "every sample once, in order"

    check()
    feed = StreamFeed()
    assert feed.next("s.0", np.zeros(4000, np.float32), 160)[1].start == 0
    assert feed.next("s.1", np.zeros(3000, np.float32), 160)[1].start == 0, "the next segment: a new stream"
    feed.lost()
    assert feed.next("s.1", np.zeros(6000, np.float32), 160)[1].start == 0, "after a lost piece: again from 0"
