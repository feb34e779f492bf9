"""Give tqdm a plain ``threading.RLock`` before NeMo creates any progress bar.

The bug this prevents: under the ``spawn`` (or ``forkserver``) start method, in a process
whose ``sys.stderr.fileno()`` returns -1 (stderr replaced by a TUI, a log redirect,
pythonw, some service managers), the first tqdm bar created in a non-main thread makes
tqdm build a *multiprocessing* RLock. Its semaphore registers with the resource tracker,
which is started with ``spawnv_passfds([..., -1])`` and fails with
``ValueError: bad value(s) in fds_to_keep``. ``disable=True`` does not help: the lock is
made in ``tqdm.__new__``. The worker only needs thread safety, so a threading lock set
through tqdm's public ``set_lock`` is the whole fix. No import hooks, nothing at import.
"""
from __future__ import annotations

import threading
from collections.abc import Callable

_UNSET = object()


def apply_tqdm_lock() -> Callable[[], None]:
    """Install a ``threading.RLock`` as tqdm's class lock; return a function that undoes it.

    Idempotent: when the lock is already a threading RLock nothing changes and the undo
    function does nothing.
    """
    from tqdm.std import tqdm

    previous = tqdm.__dict__.get("_lock", _UNSET)
    if isinstance(previous, type(threading.RLock())):
        return lambda: None
    tqdm.set_lock(threading.RLock())
    installed = tqdm.__dict__["_lock"]

    def undo() -> None:
        if tqdm.__dict__.get("_lock") is not installed:
            return  # someone replaced it since; leave theirs alone
        if previous is _UNSET:
            del tqdm._lock
        else:
            tqdm.set_lock(previous)

    return undo
