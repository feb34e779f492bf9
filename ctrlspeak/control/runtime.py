"""Where the control socket lives, who may own its directory and file, and who is at the other end.

The socket sits in a private per-user runtime directory (mode 0700, owned by the user, never
a shared sticky one like /tmp) as a mode 0600 file that one daemon claims at a time; the
server and the client both ask the kernel for the peer's uid, so another user can neither
talk to the daemon nor pose as it.
"""
from __future__ import annotations

import ctypes
import fcntl
import json
import logging
import os
import socket
import stat
import struct
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from ctrlspeak import errors
from ctrlspeak.control.protocol import encode, read_line

log = logging.getLogger(__name__)

ENV_RUNTIME_DIR = "CTRLSPEAK_RUNTIME_DIR"
SOCKET_NAME = "control.sock"
DIR_HINT = "remove it, or set CTRLSPEAK_RUNTIME_DIR to a private directory of yours"
# sun_path holds 108 bytes on Linux and 104 on the BSDs, NUL included
_MAX_SUN_PATH = 107 if sys.platform.startswith("linux") else 103


def default_runtime_dir() -> Path:
    """``$CTRLSPEAK_RUNTIME_DIR``, else the platform's per-user runtime dir + ``ctrlspeak``."""
    override = os.environ.get(ENV_RUNTIME_DIR)
    if override:
        return Path(override).expanduser()
    return Path(platformdirs.user_runtime_dir("ctrlspeak"))


def socket_path(runtime_dir: Path | None = None) -> Path:
    """Where the control socket lives. Pure: creates nothing (the server does that)."""
    return Path(runtime_dir if runtime_dir is not None else default_runtime_dir()) / SOCKET_NAME


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` with mode 0700, or check an existing one is ours and private."""
    path = Path(path)
    try:
        path.mkdir(mode=0o700, parents=True)
    except FileExistsError:
        pass
    except OSError as exc:
        raise errors.ConfigError(f"cannot create the runtime directory {path}: {exc.strerror or exc}",
                                 hint=DIR_HINT) from None
    try:
        st = os.stat(path)
    except OSError as exc:
        raise errors.ConfigError(f"cannot use the runtime directory {path}: {exc.strerror or exc}",
                                 hint=DIR_HINT) from None
    if not stat.S_ISDIR(st.st_mode):
        raise errors.ConfigError(f"the runtime path {path} is not a directory", hint=DIR_HINT)
    uid = os.getuid()
    if st.st_uid != uid:
        raise errors.ConfigError(
            f"the runtime directory {path} belongs to uid {st.st_uid}, not to you (uid {uid})", hint=DIR_HINT)
    mode = stat.S_IMODE(st.st_mode)
    if mode & stat.S_ISVTX:  # /tmp and the like: shared by design, never ours to lock down
        raise errors.ConfigError(f"the runtime directory {path} is a shared (sticky) directory", hint=DIR_HINT)
    if mode != 0o700:
        os.chmod(path, 0o700)
        if mode & 0o077:
            log.warning("runtime directory %s was mode %04o; set it to 0700", path, mode)
    return path


def check_path_length(path: Path) -> None:
    """Refuse, with a hint, a socket path the kernel would truncate or reject."""
    size = len(os.fsencode(path))
    if size > _MAX_SUN_PATH:
        raise errors.ConfigError(
            f"the control socket path is too long for a Unix socket ({size} bytes, at most {_MAX_SUN_PATH}): {path}",
            hint="set CTRLSPEAK_RUNTIME_DIR to a shorter directory")


@dataclass(frozen=True)
class PeerCredentials:
    """The process at the other end of a Unix socket; ``pid`` is None where the kernel will not say."""

    pid: int | None
    uid: int
    gid: int | None


def peer_credentials(sock: socket.socket) -> PeerCredentials:
    """The process at the other end of a connected Unix socket, as the kernel reports it."""
    if sys.platform.startswith("linux"):
        fmt = "iII"  # struct ucred {pid_t pid; uid_t uid; gid_t gid;}
        raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize(fmt))
        pid, uid, gid = struct.unpack(fmt, raw)
        return PeerCredentials(pid or None, uid, gid)
    uid_c, gid_c = ctypes.c_uint32(), ctypes.c_uint32()
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.getpeereid(sock.fileno(), ctypes.byref(uid_c), ctypes.byref(gid_c)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    pid = None
    if sys.platform == "darwin":
        try:  # SOL_LOCAL = 0, LOCAL_PEERPID = 2
            pid = struct.unpack("i", sock.getsockopt(0, 2, 4))[0] or None
        except OSError:
            pid = None
    return PeerCredentials(pid, uid_c.value, gid_c.value)


def claim_socket_path(sock: socket.socket, path: Path, backlog: int) -> tuple[int, int]:
    """Bind and listen ``sock`` at ``path`` (mode 0600), replacing a dead daemon's leftover.

    Returns the socket file's (st_dev, st_ino), so :func:`release_socket_path` removes only
    this file and never a successor's. Raises ServiceError when a live daemon holds the path.
    """
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        fcntl.flock(dir_fd, fcntl.LOCK_EX)  # two daemons starting at once must not both claim the path
        _remove_stale(path)
        try:
            old_umask = os.umask(0o177)  # no window where the socket is reachable by others
            try:
                sock.bind(os.fspath(path))
            finally:
                os.umask(old_umask)
            os.chmod(path, 0o600)
            sock.listen(backlog)
            st = os.stat(path)
        except OSError as exc:
            raise errors.ServiceError(f"cannot create the control socket {path}: {exc.strerror or exc}") from None
        return st.st_dev, st.st_ino
    finally:
        os.close(dir_fd)


def release_socket_path(path: Path, identity: tuple[int, int] | None) -> None:
    """Remove the socket file at ``path`` if it is still the one :func:`claim_socket_path` made."""
    if identity is None:
        return
    try:
        st = os.stat(path)
        if (st.st_dev, st.st_ino) == identity:
            os.unlink(path)
    except FileNotFoundError:
        pass


def running_daemon_pid(sock: socket.socket) -> int | None:
    """The pid of the daemon at the other end of ``sock``: from the kernel, else from a status reply."""
    try:
        pid = peer_credentials(sock).pid
    except OSError:
        pid = None
    if pid:
        return pid
    try:
        sock.sendall(encode({"cmd": "status"}))
        line = read_line(sock, bytearray(), time.monotonic() + 1.0)
        reply = json.loads(line) if line else None
    except (OSError, ValueError, errors.CtrlspeakError):
        return None
    value = reply.get("pid") if isinstance(reply, dict) else None
    return value if type(value) is int else None


def _remove_stale(path: Path) -> None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise errors.ServiceError(f"{path} exists and is not a socket", hint=DIR_HINT)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        try:
            probe.connect(os.fspath(path))
        except ConnectionRefusedError:
            log.info("removing stale control socket %s", path)
            path.unlink(missing_ok=True)
            return
        except FileNotFoundError:
            return
        except OSError as exc:
            raise errors.ServiceError(f"another ctrlspeak daemon holds {path} but does not answer ({exc})") from None
        pid = running_daemon_pid(probe)
    raise errors.ServiceError(f"another ctrlspeak daemon is already running (pid {pid or 'unknown'})",
                              hint="use the running daemon (`ctrlspeak status`), or stop it first")
