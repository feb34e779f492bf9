"""The daemon side never imports torch or NeMo: every daemon-side module, each imported alone in
a fresh interpreter, then the commands that import more as they run (style rule 2).

Daemon-side modules are found, not listed: every module under ``ctrlspeak/`` (a new subpackage
is covered the day it lands) and the torch-free modules of the worker-side folders below.
"""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("torch", "nemo", "lightning")

#: torch-free modules of models/, workers/ and patches/ that the daemon imports
#: (models.backends, models.fastload and models.int8 are worker-only: they import torch)
WORKER_SIDE_BUT_LIGHT = (
    "ctrlspeak.models", "ctrlspeak.models.registry", "ctrlspeak.models.download", "ctrlspeak.models.hub",
    "ctrlspeak.models.cache", "ctrlspeak.workers", "ctrlspeak.workers.main", "ctrlspeak.workers.channel",
    "ctrlspeak.patches", "ctrlspeak.patches.tqdm_lock",
)


def daemon_side_modules() -> list[str]:
    names = []
    for path in sorted((ROOT / "ctrlspeak").rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__main__":
            continue  # it runs the CLI when imported: the commands test below covers it
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names.append(".".join(parts))
    return [*names, *WORKER_SIDE_BUT_LIGHT]


def _heavy_after(code: str, timeout: float = 120) -> list[str]:
    script = code + f"\nimport sys\nprint('HEAVY:', sorted({{m.split('.')[0] for m in sys.modules}} & {set(HEAVY)!r}))"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, out.stderr
    line = next(l for l in reversed(out.stdout.splitlines()) if l.startswith("HEAVY: "))
    return eval(line.removeprefix("HEAVY: "))  # a printed list of str


def test_the_module_list_finds_the_daemon():
    found = daemon_side_modules()
    assert {"ctrlspeak.cli", "ctrlspeak.commands.transcribe", "ctrlspeak.models.registry"} <= set(found)
    assert len(found) == len(set(found))


@pytest.mark.parametrize("module", daemon_side_modules())
def test_importing_a_daemon_side_module_leaves_torch_and_nemo_out(module):
    assert _heavy_after(f"import {module}") == []


def test_daemon_side_commands_leave_torch_and_nemo_out_as_they_run():
    """What imports lazily, inside functions: the CLI, the first run's hub probe, doctor's
    checks and bench's daemon rig (none of them start a worker)."""
    code = textwrap.dedent(
        """
        from ctrlspeak import config, doctor
        from ctrlspeak.cli import main
        from ctrlspeak.commands import bench
        from ctrlspeak.models import hub
        main(["models", "list"])
        assert hub.probe("http://127.0.0.1:9", timeout=1) is not None  # the first run's reachability check
        doctor.run_checks()
        with bench.DaemonRig(config.Config(model="tiny-en")) as rig:
            assert rig.daemon.supervisor is None  # not started: no worker
        bench.dictation(bench.load_sentences(), 5.0)
        """
    )
    assert _heavy_after(code) == []
