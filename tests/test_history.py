from __future__ import annotations

import argparse
import json
import os
import sqlite3
import stat
import threading

import pytest

from ctrlspeak import errors
from ctrlspeak.commands import history as history_command
from ctrlspeak.history import SCHEMA_VERSION, Entry, History, default_path


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_round_trip(tmp_path):
    with History(tmp_path / "h.sqlite3") as h:
        entry_id = h.add("hello world", model="parakeet-tdt-0.6b-v2", duration_s=2.5, latency_s=0.31,
                         created_at=1_700_000_000.5)
        got = h.get(entry_id)
    assert got == Entry(entry_id, 1_700_000_000.5, "hello world", "parakeet-tdt-0.6b-v2", 2.5, 0.31, "dictation")


def test_missing_entry_and_unknown_latency(tmp_path):
    with History(tmp_path / "h.sqlite3") as h:
        entry_id = h.add("x", model="m", duration_s=1.0, latency_s=None, source="file")
        assert h.get(entry_id).latency_s is None
        assert h.get(entry_id).source == "file"
        assert h.get(entry_id + 100) is None


def test_new_directory_and_file_are_private(tmp_path):
    path = tmp_path / "data" / "ctrlspeak" / "history.sqlite3"
    old_umask = os.umask(0o022)
    try:
        with History(path) as h:
            h.add("secret", model="m", duration_s=1.0, latency_s=None)
            # SQLite gives the WAL files the database's mode; they exist while it is open
            for side in (path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
                assert mode(side) == 0o600, side
    finally:
        os.umask(old_umask)
    assert mode(path.parent) == 0o700
    assert mode(path) == 0o600


def test_existing_loose_file_and_default_directory_are_tightened(isolated_env):
    path = default_path()
    assert str(path).startswith(str(isolated_env / "data"))
    path.parent.mkdir(parents=True)
    os.chmod(path.parent, 0o755)
    path.touch()
    os.chmod(path, 0o644)
    History().close()
    assert mode(path.parent) == 0o700
    assert mode(path) == 0o600


def test_existing_directory_given_by_hand_is_left_alone(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o755)
    History(shared / "h.sqlite3").close()
    assert mode(shared) == 0o755
    assert mode(shared / "h.sqlite3") == 0o600


def test_recent_is_newest_first_and_limited(tmp_path):
    with History(tmp_path / "h.sqlite3") as h:
        for i, t in enumerate([30.0, 10.0, 20.0, 40.0]):
            h.add(f"t{t:.0f}", model="m", duration_s=i, latency_s=None, created_at=t)
        assert [e.text for e in h.recent()] == ["t40", "t30", "t20", "t10"]
        assert [e.text for e in h.recent(limit=2)] == ["t40", "t30"]
        assert h.recent(limit=0) == []


def test_same_timestamp_orders_by_insertion(tmp_path):
    with History(tmp_path / "h.sqlite3") as h:
        ids = [h.add(str(i), model="m", duration_s=1, latency_s=None, created_at=5.0) for i in range(3)]
        assert [e.id for e in h.recent()] == ids[::-1]


def test_reopen_keeps_entries_wal_and_schema_version(tmp_path):
    path = tmp_path / "h.sqlite3"
    with History(path) as h:
        first = h.add("one", model="m", duration_s=1, latency_s=0.1)
    with History(path) as h:
        second = h.add("two", model="m", duration_s=1, latency_s=0.1)
        assert second > first
        assert [e.text for e in h.recent()] == ["two", "one"]
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        db.close()


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "h.sqlite3"
    History(path).close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(errors.CtrlspeakError, match="newer"):
        History(path)


def test_unicode_text(tmp_path):
    text = "Grüße, 你好, مرحبا, emoji 🎙️ and a\nnewline"
    with History(tmp_path / "h.sqlite3") as h:
        entry_id = h.add(text, model="canary-1b-flash", duration_s=3.0, latency_s=0.5)
    with History(tmp_path / "h.sqlite3") as h:
        assert h.get(entry_id).text == text


def test_threads_share_one_history(tmp_path):
    with History(tmp_path / "h.sqlite3") as h:
        def writer(n: int) -> None:
            for i in range(25):
                h.add(f"{n}-{i}", model="m", duration_s=1, latency_s=None)
                h.recent(5)

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(h.recent(1000)) == 100


def test_closed_history_raises(tmp_path):
    h = History(tmp_path / "h.sqlite3")
    h.close()
    h.close()  # twice is fine
    with pytest.raises(errors.CtrlspeakError):
        h.recent()


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    history_command.add_parser(sub)
    return parser.parse_args(argv)


def test_command_prints_table_and_json(isolated_env, capsys):
    with History() as h:
        h.add("first words", model="m1", duration_s=1.5, latency_s=0.25, created_at=1_700_000_000)
        h.add("second\nwords", model="m2", duration_s=2.0, latency_s=None, created_at=1_700_000_100,
              raw_text="second new line words")

    assert history_command.run(_parse(["history", "--limit", "1"])) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1
    assert "second words" in lines[0] and "m2" in lines[0] and "2.0s" in lines[0]

    assert history_command.run(_parse(["history", "--json"])) == 0
    data = json.loads(capsys.readouterr().out)
    assert [e["text"] for e in data["entries"]] == ["second\nwords", "first words"]
    assert data["entries"][1]["latency_s"] == 0.25
    assert [e["raw_text"] for e in data["entries"]] == ["second new line words", "first words"]


def test_command_with_no_history(isolated_env, capsys):
    assert history_command.run(_parse(["history"])) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "no transcripts yet" in captured.err


def test_command_rejects_bad_limit():
    with pytest.raises(SystemExit):
        _parse(["history", "--limit", "0"])


def test_a_version_1_file_gains_journal_ids_and_keeps_its_rows(tmp_path):
    from ctrlspeak.history import _MIGRATIONS

    path = tmp_path / "h.sqlite3"
    db = sqlite3.connect(path, isolation_level=None)
    for statement in _MIGRATIONS[0]:  # the schema as ctrlspeak wrote it before journal ids
        db.execute(statement)
    db.execute("PRAGMA user_version = 1")
    db.execute("INSERT INTO transcripts (created_at, text, model, duration_s) VALUES (1.0, 'old', 'm', 1.0)")
    db.close()
    with History(path) as h:
        assert [e.text for e in h.recent()] == ["old"]
        first = h.add("new", model="m", duration_s=1, latency_s=None, journal_id="20260101-000000-abcdef")
        again = h.add("new", model="m", duration_s=1, latency_s=None, journal_id="20260101-000000-abcdef")
        assert again == first and len(h.recent()) == 2, "one row per journal entry"
        assert h.has_journal_id("20260101-000000-abcdef") and not h.has_journal_id("other")
        h.add("no id", model="m", duration_s=1, latency_s=None)
        h.add("no id", model="m", duration_s=1, latency_s=None)  # rows without a journal id never clash
        assert len(h.recent()) == 4
