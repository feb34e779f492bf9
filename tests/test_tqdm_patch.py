"""The tqdm lock patch: a regression test that reproduces the real failure."""
from __future__ import annotations

import subprocess
import sys
import threading
import textwrap

REPRO = textwrap.dedent(
    """
    import io, multiprocessing, sys, threading
    multiprocessing.set_start_method("spawn")  # the default on macOS/Windows; forced here

    class NoFdStderr(io.StringIO):
        def fileno(self):
            return -1  # a TUI, a log redirect, pythonw, some service managers

    if sys.argv[1] == "patched":
        from ctrlspeak.patches.tqdm_lock import apply_tqdm_lock
        apply_tqdm_lock()
    sys.stderr = NoFdStderr()
    from tqdm import tqdm

    outcome = {}
    def make_bar():
        try:
            with tqdm(total=3) as bar:
                bar.update(3)
            outcome["r"] = "ok"
        except Exception as exc:
            outcome["r"] = f"{type(exc).__name__}: {exc}"

    t = threading.Thread(target=make_bar)
    t.start(); t.join()
    print(outcome["r"])
    """
)


def _run(mode: str) -> str:
    out = subprocess.run([sys.executable, "-c", REPRO, mode], capture_output=True, text=True, timeout=60)
    return out.stdout.strip()


def test_without_the_patch_the_bug_reproduces():
    assert _run("unpatched") == "ValueError: bad value(s) in fds_to_keep"


def test_with_the_patch_the_bar_works():
    assert _run("patched") == "ok"


def test_idempotent_and_reversible():
    from tqdm.std import tqdm

    from ctrlspeak.patches.tqdm_lock import apply_tqdm_lock

    before = tqdm.__dict__.get("_lock", None)
    undo = apply_tqdm_lock()
    lock = tqdm.__dict__["_lock"]
    assert isinstance(lock, type(threading.RLock()))
    undo_again = apply_tqdm_lock()  # second call: no change
    assert tqdm.__dict__["_lock"] is lock
    undo_again()
    assert tqdm.__dict__["_lock"] is lock
    undo()
    assert tqdm.__dict__.get("_lock", None) is before


def test_no_effect_at_import():
    code = ("import tqdm.std, ctrlspeak.patches, ctrlspeak.patches.tqdm_lock; "
            "print('_lock' in tqdm.std.tqdm.__dict__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False"
