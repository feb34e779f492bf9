"""The daemon side never imports torch or NeMo."""
from __future__ import annotations

import subprocess
import sys
import textwrap


def test_daemon_side_modules_do_not_import_torch():
    code = textwrap.dedent(
        """
        import sys
        import ctrlspeak.cli, ctrlspeak.commands.transcribe, ctrlspeak.commands.models
        import ctrlspeak.control, ctrlspeak.control.protocol, ctrlspeak.control.runtime
        import ctrlspeak.control.client, ctrlspeak.control.server
        import ctrlspeak.worker_client, ctrlspeak.audio, ctrlspeak.segment, ctrlspeak.config
        import ctrlspeak.models.registry, ctrlspeak.models.download, ctrlspeak.workers.main
        from ctrlspeak.cli import main
        main(["models", "list"])
        from ctrlspeak.models import hub
        assert hub.probe("http://127.0.0.1:9", timeout=1) is not None  # the first run's reachability check
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "nemo", "lightning"))
        print("HEAVY:", heavy)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "HEAVY: []" in out.stdout
