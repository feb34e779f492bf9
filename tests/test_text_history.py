"""History keeps the delivered text and the model's own; files from before still load."""
from __future__ import annotations

import sqlite3

from ctrlspeak.history import _MIGRATIONS, History


def test_raw_text_is_kept_where_the_pipeline_changed_it(tmp_path):
    with History(tmp_path / "h.sqlite3") as h:
        changed = h.add("Run kubectl.", model="m", duration_s=1, latency_s=None, raw_text="run cube control")
        same = h.add("as is", model="m", duration_s=1, latency_s=None, raw_text="as is")
        assert (h.get(changed).text, h.get(changed).raw) == ("Run kubectl.", "run cube control")
        assert h.get(same).raw_text is None and h.get(same).raw == "as is"


def test_a_version_2_file_loads_and_gains_raw_text(tmp_path):
    path = tmp_path / "h.sqlite3"
    db = sqlite3.connect(path, isolation_level=None)
    for step in _MIGRATIONS[:2]:  # the schema before the text pipeline
        for statement in step:
            db.execute(statement)
    db.execute("PRAGMA user_version = 2")
    db.execute("INSERT INTO transcripts (created_at, text, model, duration_s) VALUES (1.0, 'old', 'm', 1.0)")
    db.close()
    with History(path) as h:
        (old,) = h.recent()
        assert (old.text, old.raw_text, old.raw) == ("old", None, "old")
        h.add("New", model="m", duration_s=1, latency_s=None, raw_text="new")
        assert [e.raw for e in h.recent()] == ["new", "old"]
