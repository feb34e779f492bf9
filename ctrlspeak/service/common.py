"""What the systemd and launchd halves of ``ctrlspeak service`` share: the daemon's command
line, running a manager's command with a timeout, the status both report, removing a file.

Standard library only: the daemon and ``ctrlspeak doctor`` import this too.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ctrlspeak import errors

COMMAND_TIMEOUT_S = 15.0


def daemon_argv(python: str | None = None) -> list[str]:
    # sys.executable as given, not resolved: a venv's bin/python symlink is what makes the venv active
    exe = sys.executable if python is None else python
    if not exe or not os.path.isabs(exe):
        raise errors.ServiceError(f"cannot tell the absolute path of this Python ({exe!r})",
                                  hint="run `ctrlspeak service install` with the Python that has ctrlspeak installed")
    return [exe, "-m", "ctrlspeak", "run"]


def home(environ: Mapping[str, str]) -> Path:
    return Path(environ.get("HOME") or os.path.expanduser("~"))


@dataclass(frozen=True)
class CommandResult:
    argv: tuple[str, ...]
    #: 127: the program is missing; 124: it ran past its timeout
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def why(self) -> str:
        text = (self.stderr.strip() or self.stdout.strip()).splitlines()
        return text[-1] if text else f"exit status {self.returncode}"


def run_command(argv: Sequence[str], environ: Mapping[str, str], timeout: float = COMMAND_TIMEOUT_S) -> CommandResult:
    exe = shutil.which(argv[0], path=environ.get("PATH", os.defpath))
    if exe is None:
        return CommandResult(tuple(argv), 127, "", f"{argv[0]}: command not found")
    try:
        done = subprocess.run([exe, *argv[1:]], env=dict(environ), stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return CommandResult(tuple(argv), 124, "", f"{argv[0]} did not answer within {timeout:.0f} s")
    except OSError as exc:
        return CommandResult(tuple(argv), 126, "", f"{argv[0]}: {exc.strerror}")
    return CommandResult(tuple(argv), done.returncode, done.stdout, done.stderr)


def checked(result: CommandResult) -> CommandResult:
    if not result.ok:
        raise errors.ServiceError(f"`{' '.join(result.argv)}` failed: {result.why()}")
    return result


def remove(path: Path) -> list[str]:
    try:
        path.unlink()
    except FileNotFoundError:
        return [f"{path} was not installed"]
    except OSError as exc:
        raise errors.ServiceError(f"cannot remove {path}: {exc.strerror}") from exc
    return [f"removed {path}"]


@dataclass(frozen=True)
class ServiceStatus:
    platform: str
    path: str
    installed: bool
    #: `systemctl --user is-active` / launchd state; None when the manager cannot be asked
    active: str | None
    #: `systemctl --user is-enabled`; None when unknown (and always on macOS)
    enabled: str | None
    manager: str
