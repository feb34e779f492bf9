"""The daemon's stderr, with the C audio libraries' chatter kept off the console.

PortAudio and ALSA write diagnostics straight to file descriptor 2, from their own threads:
when the sound server dies that is nine raw lines ("Expression '...' failed in
'src/hostapi/alsa/pa_linux_alsa.c', line: 3665", "ALSA lib pcm.c:...") beside the daemon's
own clear one. Neither library can be told where to print (PortAudio exports no hook for
it), so ``ctrlspeak run`` makes fd 2 a pipe: a thread reads it a line at a time, logs those
libraries' lines at DEBUG (the log file keeps them with -vv) and passes every other line (a
worker's traceback, a tool's complaint) to the real stderr unchanged.

Python's own ``sys.stderr`` (the console line, log records) is pointed at the real stderr
before that, so nothing the daemon itself says depends on the thread.
"""
from __future__ import annotations

import logging
import os
import re
import sys
import threading

log = logging.getLogger(__name__)

#: lines PortAudio's ALSA host API and alsa-lib (and JACK, probed by both) write on their own
NATIVE_NOISE = re.compile(
    rb"^(?:Expression '.*' failed in '|ALSA lib |PaAlsa|Cannot connect to server (?:socket|request channel)"
    rb"|jack server is not running|JackShmReadWritePtr|attempt to connect to server failed)")
_MAX_LINE = 64 * 1024


class NativeStderr:
    """Install with :meth:`install` (returns False where it does not apply); :meth:`close`
    puts the real stderr back on fd 2 and forwards what is still in the pipe."""

    def __init__(self) -> None:
        self._real: int | None = None
        self._read: int | None = None
        self._thread: threading.Thread | None = None
        self.suppressed = 0

    def install(self) -> bool:
        if not sys.platform.startswith("linux") or self._real is not None:
            return False
        try:
            os.fstat(2)
            real = os.dup(2)
        except OSError:
            return False  # no stderr at all: nothing to keep clean
        read, write = os.pipe()
        self._point_python_at(real)
        os.dup2(write, 2)  # fd 2 stays inheritable: spawned workers and tools write here too
        os.close(write)
        self._real, self._read = real, read
        self._thread = threading.Thread(target=self._pump, name="native-stderr", daemon=True)
        self._thread.start()
        return True

    def close(self, timeout: float = 0.5) -> None:
        if self._real is None:
            return
        try:
            os.dup2(self._real, 2)  # the pipe's last writer in this process is gone
        except OSError:
            pass
        if self._thread is not None:
            self._thread.join(timeout)  # children may hold the pipe open: do not wait for them

    @staticmethod
    def _point_python_at(fd: int) -> None:
        old = sys.stderr
        try:
            old.flush()
        except (OSError, ValueError, AttributeError):
            pass
        new = open(fd, "w", buffering=1, encoding=getattr(old, "encoding", None) or "utf-8",  # noqa: SIM115
                   errors="backslashreplace", closefd=False)
        sys.stderr = new
        for handler in logging.getLogger().handlers:
            if isinstance(handler, logging.StreamHandler) and handler.stream is old:
                handler.setStream(new)

    def _pump(self) -> None:
        assert self._read is not None and self._real is not None
        pending = b""
        while True:
            try:
                chunk = os.read(self._read, 65536)
            except OSError:
                chunk = b""
            if not chunk:
                if pending:
                    self._line(pending)
                return
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                self._line(line + b"\n")
            if len(pending) > _MAX_LINE:  # a writer without newlines: pass it on as it is
                self._line(pending)
                pending = b""

    def _line(self, line: bytes) -> None:
        if NATIVE_NOISE.match(line):
            self.suppressed += 1
            log.debug("audio library: %s", line.decode("utf-8", "replace").rstrip())
            return
        view = memoryview(line)
        while view:
            try:
                view = view[os.write(self._real, view):]
            except OSError:
                return
