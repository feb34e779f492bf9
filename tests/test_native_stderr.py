"""The daemon's fd 2 filter (issue 10, item 20): PortAudio's and ALSA's raw lines stay off the
console, everything else still gets through. Run in a child process: it rewires fd 2."""
from __future__ import annotations

import subprocess
import sys
import textwrap

CHILD = textwrap.dedent(r"""
    import logging, os, subprocess, sys
    logging.basicConfig(level=logging.WARNING, format="log: %(message)s")
    from ctrlspeak.daemon.native_stderr import NativeStderr
    native = NativeStderr()
    assert native.install()
    # what PortAudio and alsa-lib write from their own threads, straight to fd 2
    os.write(2, b"Expression 'alsa_snd_pcm_poll_descriptors_revents( self->pcm, pfds, self->nfds, &revents )' "
                b"failed in 'src/hostapi/alsa/pa_linux_alsa.c', line: 3665\n")
    os.write(2, b"ALSA lib pulse.c:242:(pulse_connect) PulseAudio: Unable to connect: Connection refused\n")
    os.write(2, b"a line from C that is not audio noise\n")
    subprocess.run([sys.executable, "-c", "import sys; sys.stderr.write('a worker traceback line\\n')"])
    print("python's own stderr", file=sys.stderr)
    logging.getLogger("x").warning("a log record")
    native.close()
    print("suppressed", native.suppressed)
""")


def test_audio_library_lines_are_dropped_and_the_rest_passes(fault_row):
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    err = out.stderr
    assert "Expression '" not in err and "ALSA lib" not in err, err
    for kept in ("a line from C that is not audio noise", "a worker traceback line", "python's own stderr",
                 "log: a log record"):
        assert kept in err, (kept, err)
    assert "suppressed 2" in out.stdout
