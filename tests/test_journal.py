from __future__ import annotations

import os
import stat

import numpy as np
import pytest

from ctrlspeak import errors
from ctrlspeak.audio.journal import Journal


def test_recording_is_on_disk_while_it_is_made_and_committed_atomically(tmp_path):
    j = Journal(tmp_path / "journal")
    assert stat.S_IMODE(os.stat(j.dir).st_mode) == 0o700
    rec = j.start(model="m")
    audio = np.linspace(-1, 1, 32000, dtype=np.float32)
    rec.append(audio[:16000])
    rec._file.flush()
    left = j.leftovers()
    assert [e.complete for e in left] == [False], "an unfinished recording is already visible"
    assert stat.S_IMODE(os.stat(left[0].audio_path).st_mode) == 0o600
    rec.append(audio[16000:])
    info = rec.commit(stopped_at=1.0)
    assert info.complete and not list(j.dir.glob("*.partial.*"))
    np.testing.assert_array_equal(j.read(info), audio)
    assert j.leftovers()[0].meta["model"] == "m"
    j.done(info.id)
    assert j.leftovers() == [] and not list(j.dir.iterdir())


def test_a_crash_leaves_a_readable_partial_entry(tmp_path):
    j = Journal(tmp_path)
    rec = j.start()
    rec.append(np.ones(1000, np.float32) * 0.5)
    rec._file.flush()
    with open(j.dir / f"{rec.id}.partial.f32", "ab") as f:
        f.write(b"\x00\x01")  # half a sample, as a crash mid-write leaves it
    entry = Journal(tmp_path).leftovers()[0]
    data = Journal.read(entry)
    assert data.size == 1000 and np.all(data == 0.5)


def test_keep_recordings_retention(tmp_path):
    j = Journal(tmp_path, keep=2)
    ids = []
    for i in range(4):
        rec = j.start()
        rec.append(np.full(160, i, np.float32))
        ids.append(rec.commit().id)
        j.done(ids[-1])
    assert [e.id for e in j.kept()] == ids[-2:]
    assert j.find("last").id == ids[-1]
    assert j.read(j.find(ids[-2]))[0] == 2
    with pytest.raises(errors.CtrlspeakError, match="no kept recording"):
        j.find("nope")


def test_discard(tmp_path):
    j = Journal(tmp_path)
    rec = j.start()
    rec.append(np.zeros(10, np.float32))
    rec.discard()
    assert j.leftovers() == []


def test_retry_with_nothing_kept_says_how_to_keep_recordings(isolated_env, capsys, fault_row):
    from ctrlspeak import cli

    assert cli.main(["retry"]) == errors.info_for("ERR_NOTHING_KEPT").exit_status
    err = capsys.readouterr().err
    assert err.startswith("ctrlspeak: ERR_NOTHING_KEPT: no recordings are kept") and "keep_recordings = N" in err
    assert err.count("\n") == 1
    assert errors.info_for("ERR_NOTHING_KEPT").exit_status not in (0, 1)
    fault_row("#21 `ctrlspeak retry` with no kept recordings",
              "ERR_NOTHING_KEPT (exit 30) saying to set keep_recordings, not ERR_INTERNAL / exit 1")
