"""The daemon driven through its events, with fakes at the edges (tests/fakes.py) and the real
history and journal: the outcomes tests/desktop/ checks on the desktop stack, without one.

Each case asserts what the person would see and keep: the status events, history's rows, the
journal entry kept or removed, and what is delivered at the cursor. The last cases stop it the
way a signal does (only an event posted to the loop; the loop's own bound; a second signal).
"""
from __future__ import annotations

import signal
import threading
from concurrent.futures import Future

import numpy as np
import pytest

from ctrlspeak.daemon import core as daemon_mod
from ctrlspeak.daemon import stopping
from ctrlspeak import errors
from tests import fakes
from tests.fakes import Delivery, FakeClock, FakeWorkers, command, pump, speech, wait


@pytest.fixture
def stores(isolated_env, workers):
    """make(**cfg): a ready daemon with the real history and journal in the isolated dirs."""
    made = fakes.DaemonsWithStores()
    yield lambda clock=None, **cfg: made(clock=clock or FakeClock(), **cfg)
    made.close()


def history(d: daemon_mod.Daemon) -> list[tuple[str, str]]:
    return [(e.text, e.source) for e in reversed(d.parts.history.recent())]


def record(d: daemon_mod.Daemon, audio: np.ndarray) -> None:
    """The start command, the recorder's audio, as the loop receives them (no stop)."""
    started = command(d, "start")
    pump(d, started.done)
    assert started.exception() is None, started.exception()
    d.post(daemon_mod.AudioIn(audio))
    pump(d, d._inbox.empty)


def settle(d: daemon_mod.Daemon) -> None:
    """Until the dictations in flight are over."""
    pump(d, lambda: not d.recording and not d.dictations.finishing and d._inbox.empty())


def dictate(d: daemon_mod.Daemon, audio: np.ndarray | None = None) -> None:
    record(d, speech() if audio is None else audio)
    stopped = command(d, "stop")
    pump(d, stopped.done)
    settle(d)


# -- one dictation's outcomes -------------------------------------------------------------------------
def test_a_dictation_is_delivered_kept_in_history_and_leaves_no_journal_entry(stores):
    d, events = stores()
    dictate(d)
    assert d.parts.output.texts == ["words from worker 4000"]
    assert history(d) == [("words from worker 4000", "dictation")]
    assert d.parts.journal.leftovers() == []
    assert [e.state for e in events][-3:] == ["transcribing", "done", "ready"]


def test_a_segment_that_fails_is_told_and_its_recording_kept(stores, workers: FakeWorkers):
    d, events = stores()
    workers.answer = lambda: errors.TranscribeError("the model failed on this segment")
    dictate(d)
    err = next(e for e in events if e.state == "error")
    assert err.code == "ERR_TRANSCRIBE" and "`ctrlspeak retry last`" in err.message
    assert d.parts.output.texts == [] and history(d) == []
    assert len(d.parts.journal.leftovers()) == 1, "the words are not lost: the recording stays in the journal"


def test_empty_text_says_nothing_was_heard_and_drops_the_recording(stores, workers: FakeWorkers):
    d, events = stores()
    workers.answer = lambda: ""
    dictate(d)
    assert any(e.state == "idle" and e.message == "nothing was heard" for e in events)
    assert d.parts.output.texts == [] and history(d) == []
    assert d.parts.journal.leftovers() == []
    assert not any(e.state == "done" for e in events)


def test_a_failed_paste_leaves_the_text_on_the_clipboard_and_in_history(stores):
    d, events = stores()
    d.parts.output.result = Delivery(pasted=False, method="paste", detail="the paste keystroke failed: no window")
    dictate(d)
    err = next(e for e in events if e.state == "error")
    assert err.code == "ERR_PASTE_FAILED" and "no window" in err.message
    done = next(e for e in events if e.state == "done")
    assert done.message == "on the clipboard"
    assert history(d) == [("words from worker 4000", "dictation")]
    assert d.parts.journal.leftovers() == []


def test_the_maximum_length_stops_the_recording_and_keeps_all_of_it(stores):
    d, events = stores(max_record_s=2.0)
    record(d, speech(3.0))  # past the limit: no stop command needed
    settle(d)
    assert not d.recording
    stopped = next(e for e in events if e.state == "transcribing")
    assert "maximum length of 2 s reached; the audio is kept" in stopped.message
    assert any(e.state == "notice" and "stopped at the 2 s limit" in e.message for e in events)
    assert d.parts.output.texts == ["words from worker 4000"]
    assert history(d) == [("words from worker 4000", "dictation")]


def test_live_text_grows_while_speaking_into_exactly_the_delivered_text(stores, workers: FakeWorkers):
    d, events = stores(min_silence_s=0.3)
    partials: list[dict] = []
    d.add_text_sink(partials.append)
    said = iter(["the team found a bug", "in the code"])
    workers.answer = lambda: next(said)
    pause = np.zeros(16000, np.float32)
    record(d, np.concatenate([speech(2.5), pause]))  # a pause: the first segment is cut and sent
    pump(d, lambda: partials)
    assert d.recording, "the first words are shown while the person still speaks"
    assert partials[0]["final"] == "the team found a bug" and partials[0]["tentative"] == ""
    d.post(daemon_mod.AudioIn(speech(1.0)))
    pump(d, command(d, "stop").done)
    settle(d)
    assert d.parts.output.texts == ["the team found a bug in the code"]
    assert partials[-1]["final"] == "the team found a bug in the code"
    assert [p["seq"] for p in partials] == list(range(1, len(partials) + 1))
    assert len({p["session"] for p in partials}) == 1 and all(p["event"] == "partial" for p in partials)
    assert all("the team" not in e.message for e in events), "the words never go on the status bus"


def test_with_live_on_the_open_segment_is_shown_tentative_and_the_final_text_is_unchanged(stores, workers):
    d, events = stores(live=True, live_interval_s=0.1)
    partials: list[dict] = []
    d.add_text_sink(partials.append)
    said = iter(["the team found", "the team found a bug in the code"])  # a decode, then the segment
    workers.answer = lambda: next(said)
    record(d, speech(1.5))  # no pause: the segment stays open
    pump(d, lambda: partials)
    assert d.recording and partials[0]["final"] == "" and partials[0]["tentative"] == "the team found"
    pump(d, command(d, "stop").done)
    settle(d)
    assert d.parts.output.texts == ["the team found a bug in the code"]
    assert (partials[-1]["final"], partials[-1]["tentative"]) == ("the team found a bug in the code", "")


def test_a_streaming_model_gets_the_open_segment_piece_by_piece_and_its_final_text_whole(stores, workers):
    workers.stream_chunks_ms = (160, 560, 1120)
    clock = FakeClock()
    d, _ = stores(clock=clock, live=True)
    partials: list[dict] = []
    d.add_text_sink(partials.append)
    said = iter(["the", "the team", "the team found", "the team found a", "the team found a bug in the code"])
    workers.answer = lambda: next(said)
    record(d, speech(0.4))
    for _ in range(3):  # the microphone's blocks
        clock.now += 0.4
        d.post(daemon_mod.AudioIn(speech(0.4)))
        pump(d, d._inbox.empty)
    pump(d, command(d, "stop").done)
    settle(d)
    requests = workers.instances[-1].requests
    pieces = [(n, o.stream) for n, o in requests if o.stream is not None]
    assert len(pieces) == 4 and len({p.stream for _, p in pieces}) == 1, "one stream for the one open segment"
    assert all(p.chunk_ms == 160 for _, p in pieces), "tiny-en's 160 ms, the pick for a small model"
    starts = [p.start for _, p in pieces]
    assert starts == [0, *np.cumsum([n for n, _ in pieces])[:-1]], "each piece follows the last: nothing twice"
    assert requests[-1][1].stream is None and requests[-1][0] == 16000 * 16 // 10, "the segment went whole"
    assert [p["tentative"] for p in partials[:4]] == ["the", "the team", "the team found", "the team found a"]
    assert d.parts.output.texts == ["the team found a bug in the code"]


def test_a_lost_stream_piece_starts_the_stream_again_and_costs_no_text(stores, workers):
    workers.stream_chunks_ms = (160,)
    clock = FakeClock()
    d, _ = stores(clock=clock, live=True)
    said = iter(["the", errors.StreamError("out of place"), "the team", "the team found it"])
    workers.answer = lambda: next(said)
    record(d, speech(0.4))
    for _ in range(3):  # the failure holds the next piece back a little (live_interval_s / budget)
        clock.now += 0.4
        d.post(daemon_mod.AudioIn(speech(0.4)))
        pump(d, d._inbox.empty)
    pump(d, command(d, "stop").done)
    settle(d)
    starts = [o.stream.start for _, o in workers.instances[-1].requests if o.stream is not None]
    assert starts[0] == 0 and starts[1] > 0 and starts[2] == 0, "after the failed piece, from the start again"
    assert d.parts.output.texts == ["the team found it"]


def test_typing_while_speaking_delivers_each_final_segment_then_the_rest(stores, workers: FakeWorkers):
    d, events = stores(min_silence_s=0.3, live_typing=True)
    said = iter(["the team found a bug", "in the code"])
    workers.answer = lambda: next(said)
    record(d, np.concatenate([speech(2.5), np.zeros(16000, np.float32)]))
    pump(d, lambda: d.parts.output.texts)
    assert d.recording and d.parts.output.texts == ["the team found a bug"], "typed before the stop"
    d.post(daemon_mod.AudioIn(speech(1.0)))
    pump(d, command(d, "stop").done)
    settle(d)
    assert d.parts.output.texts == ["the team found a bug", " in the code"], "the rest, spaced as a next dictation"
    assert history(d) == [("the team found a bug in the code", "dictation")], "history holds it whole"
    assert d.parts.journal.leftovers() == []
    assert [e.state for e in events][-2:] == ["done", "ready"]


def test_a_failed_paste_while_speaking_leaves_that_part_for_the_stop(stores, workers: FakeWorkers):
    d, _ = stores(min_silence_s=0.3, live_typing=True)
    said = iter(["the team found a bug", "in the code"])
    workers.answer = lambda: next(said)
    d.parts.output.result = Delivery(pasted=False, method="paste", detail="no window")
    record(d, np.concatenate([speech(2.5), np.zeros(16000, np.float32)]))
    pump(d, lambda: d.parts.output.texts)
    d.parts.output.result = Delivery()
    d.post(daemon_mod.AudioIn(speech(1.0)))
    pump(d, command(d, "stop").done)
    settle(d)
    assert d.parts.output.texts[-1] == "the team found a bug in the code", "nothing lost: all of it at the stop"
    assert history(d) == [("the team found a bug in the code", "dictation")]


def test_a_microphone_stall_transcribes_what_was_recorded_and_the_next_recording_works(stores):
    d, events = stores()
    record(d, speech())
    d.post(daemon_mod.MicStalled("no audio from the input device for 2 s"))
    settle(d)
    err = next(e for e in events if e.state == "error")
    assert err.code == "ERR_AUDIO_DEVICE" and "the audio recorded so far is being transcribed" in err.message
    assert d.parts.output.texts == ["words from worker 4000"]
    dictate(d)  # no restart needed
    assert len(d.parts.output.texts) == 2 and len(history(d)) == 2
    assert d.parts.journal.leftovers() == []


def test_a_key_source_notice_from_its_own_thread_reaches_the_person(stores):
    """The desktop portal answers about its shortcut after the daemon started (KeysNotice)."""
    d, events = stores()
    said = "global keys: Ctrl+Alt+D toggles dictation (a desktop shortcut, through xdg-desktop-portal)"
    threading.Thread(target=d.post, args=(daemon_mod.KeysNotice(said),)).start()
    pump(d, lambda: any(e.message == said for e in events))
    assert [e.state for e in events if e.message == said] == ["notice"]


def test_a_recording_a_crash_left_is_recovered_into_history_at_the_next_start(stores, isolated_env):
    from ctrlspeak.audio.journal import Journal

    left = Journal().start(model="m")  # the daemon died after the stop, before the transcript
    left.append(speech(2.0))
    left.commit(stopped_at=0.0, audio_s=2.0)
    d, events = stores()
    settle(d)
    assert history(d) == [("words from worker 4000", "recovered")]
    assert any(e.state == "notice" and e.message.startswith("recovered a 2 s recording") for e in events)
    assert d.parts.output.texts == [], "a recovered recording goes to history, never to the cursor"
    assert d.parts.journal.leftovers() == []


# -- stopping ---------------------------------------------------------------------------------------------
class Loop:
    """The daemon's real loop on a thread, stopped by posted events only."""

    def __init__(self, d: daemon_mod.Daemon) -> None:
        self.d = d
        self.thread = threading.Thread(target=d._loop, name="main-loop", daemon=True)
        self.thread.start()

    def poke(self) -> None:
        """Wake the loop (it sleeps on the real clock while a fake one is advanced)."""
        self.d.post(daemon_mod.Command({"cmd": "cancel"}, Future()))

    def join(self, timeout: float = 5.0) -> bool:
        self.thread.join(timeout)
        return not self.thread.is_alive()


def test_sigterm_while_recording_finishes_the_dictation_then_the_loop_ends(stores):
    d, _ = stores()
    record(d, speech())
    loop = Loop(d)
    d._on_signal(signal.SIGTERM)  # what the relay's thread calls: it only posts
    assert loop.join()
    assert d.exit_status == 0
    assert d.parts.output.texts == ["words from worker 4000"]
    assert history(d) == [("words from worker 4000", "dictation")]


def test_a_stop_waits_at_most_its_grace_and_the_journal_keeps_what_is_left(stores, workers: FakeWorkers):
    clock = FakeClock()
    d, events = stores(clock=clock)
    workers.instances[0].hang = True  # the transcription never comes
    record(d, speech())
    loop = Loop(d)
    d.request_stop()
    wait(lambda: any(e.message == "stopping" for e in events), what="the loop to take the stop")
    clock.now += stopping.STOP_GRACE_S - 0.5
    loop.poke()
    assert not loop.join(0.3), "within its grace the stop waits for the transcription"
    assert d._next_wait() <= 0.5, "the loop wakes by itself when the grace ends"
    clock.now += 0.5
    loop.poke()
    assert loop.join()
    assert d.exit_status == 0 and d.parts.output.texts == []
    assert len(d.parts.journal.leftovers()) == 1, "transcribed at the next start: nothing said is lost"


def test_a_second_signal_forces_the_exit(stores, workers: FakeWorkers):
    d, _ = stores()
    workers.instances[0].hang = True
    record(d, speech())
    loop = Loop(d)
    d.post(daemon_mod.SignalReceived(int(signal.SIGTERM)))
    assert not loop.join(0.3)
    d.post(daemon_mod.SignalReceived(int(signal.SIGINT)))
    assert loop.join()
    assert d.exit_status == stopping.FORCED_EXIT_STATUS
    assert workers.instances[0].closed.is_set(), "the worker is killed"
    assert len(d.parts.journal.leftovers()) == 1


def test_a_stuck_loop_is_exited_by_the_relay_after_a_second_signal(workers, monkeypatch):
    d, _ = fakes.make_daemon()  # no loop runs: as if stuck in a call that never returns
    pump(d, lambda: d.snapshot().get("worker_ready"))
    exits: list[int] = []
    monkeypatch.setattr(stopping, "FORCE_EXIT_S", 0.05)
    monkeypatch.setattr(stopping.os, "_exit", exits.append)
    d._on_signal(signal.SIGINT)
    assert exits == [], "the first signal only posts"
    d._on_signal(signal.SIGINT)
    assert exits == [stopping.FORCED_EXIT_STATUS]
    assert workers.instances[0].closed.is_set()
    assert [type(e) for e in list(d._inbox.queue)].count(daemon_mod.SignalReceived) == 2, "both were posted"


def test_after_a_second_signal_a_loop_that_gets_out_needs_no_help(workers, monkeypatch):
    d, _ = fakes.make_daemon()
    pump(d, lambda: d.snapshot().get("worker_ready"))
    exits: list[int] = []
    monkeypatch.setattr(stopping.os, "_exit", exits.append)
    loop = Loop(d)
    d._on_signal(signal.SIGTERM)
    relay = threading.Thread(target=d._on_signal, args=(signal.SIGTERM,))
    relay.start()
    assert loop.join()
    d.shutdown()
    relay.join(stopping.FORCE_EXIT_S + 1)
    assert not relay.is_alive() and exits == []
