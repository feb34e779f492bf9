"""The daemon's log file (issue 10, item 6): private like every other file the daemon writes."""
from __future__ import annotations

import logging
import os
import stat

from ctrlspeak.commands import daemon as daemon_command


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_the_log_file_is_0600_whatever_the_umask_and_after_a_rollover(isolated_env, fault_row):
    root = logging.getLogger()
    before = list(root.handlers), root.level
    old_umask = os.umask(0o022)
    try:
        path = daemon_command._setup_daemon_logging("INFO")
        handler = next(h for h in root.handlers if h not in before[0])
        logging.getLogger("ctrlspeak.test").info("a line")
        assert mode(path) == 0o600 and mode(path.parent) == 0o700
        handler.doRollover()
        assert mode(path) == 0o600 and mode(path.with_name(path.name + ".1")) == 0o600
    finally:
        os.umask(old_umask)
        for h in root.handlers[:]:
            if h not in before[0]:
                root.removeHandler(h)
                h.close()
        root.setLevel(before[1])
    fault_row("#6 the daemon's log file under umask 022", "created 0600 (dir 0700), and again after a rollover")


def test_an_older_loose_log_file_is_tightened(tmp_path):
    path = tmp_path / "ctrlspeak.log"
    path.write_text("old\n")
    os.chmod(path, 0o644)
    handler = daemon_command.PrivateLogFile(path, maxBytes=1000, backupCount=1, encoding="utf-8")
    handler.close()
    assert mode(path) == 0o600
