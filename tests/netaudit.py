"""Proof that a process made no network connection: a ``sitecustomize`` loaded through
PYTHONPATH installs an audit hook (``sys.addaudithook``) in the process and in every Python
child it starts (spawned workers included) that writes each Internet-socket connect and
each name lookup to a log. Unix sockets (the control socket, multiprocessing) are not
network and are not logged.

    overrides, log = audit_env(tmp_path)     # add overrides to the child's environment
    ...run it...
    assert guarded_pids(log) >= {pid, ...}   # the guard was really active there
    assert attempts(log) == []
"""
from __future__ import annotations

import textwrap
from pathlib import Path

SITECUSTOMIZE = textwrap.dedent(
    """
    import os, socket, sys
    _log = os.environ["CTRLSPEAK_NET_AUDIT"]
    with open(_log + ".loaded", "a") as f:  # which processes the guard is active in
        f.write(f"{os.getpid()}\\n")
    def _hook(event, args):
        if event == "socket.connect":
            family = getattr(args[0], "family", None)
            if family in (socket.AF_INET, socket.AF_INET6):
                with open(_log, "a") as f:
                    f.write(f"{os.getpid()} connect {args[1]!r}\\n")
        elif event == "socket.getaddrinfo":
            with open(_log, "a") as f:
                f.write(f"{os.getpid()} getaddrinfo {args[0]!r}\\n")
    sys.addaudithook(_hook)
    """
)


def audit_env(directory: Path) -> tuple[dict[str, str], Path]:
    """Environment overrides that load the guard, and the log it writes."""
    hook_dir = directory / "netaudit"
    hook_dir.mkdir(exist_ok=True)
    (hook_dir / "sitecustomize.py").write_text(SITECUSTOMIZE)
    log = directory / "net.log"
    log.write_text("")
    return {"PYTHONPATH": str(hook_dir), "CTRLSPEAK_NET_AUDIT": str(log)}, log


def guarded_pids(log: Path) -> set[int]:
    loaded = Path(f"{log}.loaded")
    return {int(pid) for pid in loaded.read_text().split()} if loaded.exists() else set()


def attempts(log: Path) -> list[str]:
    return log.read_text().splitlines()
