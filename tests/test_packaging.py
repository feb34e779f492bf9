"""models/, workers/ and patches/ install as ctrlspeak.models, ctrlspeak.workers and
ctrlspeak.patches: in the editable install, in a built wheel, and inside spawn children."""
from __future__ import annotations

import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path


REPO = Path(__file__).resolve().parent.parent

CHECK = textwrap.dedent(
    """
    import multiprocessing, sys
    import ctrlspeak.models, ctrlspeak.workers, ctrlspeak.patches
    import ctrlspeak.models.registry, ctrlspeak.workers.main, ctrlspeak.patches.tqdm_lock

    def child(q):
        import ctrlspeak.models, ctrlspeak.workers.main, ctrlspeak.patches.tqdm_lock
        q.put((ctrlspeak.models.__file__, ctrlspeak.workers.main.__file__, "models" in sys.modules))

    if __name__ == "__main__":
        ctx = multiprocessing.get_context("spawn")
        q = ctx.Queue()
        p = ctx.Process(target=child, args=(q,))
        p.start()
        print("PARENT", ctrlspeak.models.__file__)
        print("CHILD", *q.get(timeout=60))
        p.join()
    """
)


def _run_check(tmp_path: Path, env_extra: dict[str, str] | None = None) -> str:
    import os

    script = tmp_path / "check.py"
    script.write_text(CHECK)
    env = {**os.environ, **(env_extra or {})}
    out = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_editable_install_and_spawn_child(tmp_path):
    out = _run_check(tmp_path)
    assert f"PARENT {REPO / 'models' / '__init__.py'}" in out
    assert "CHILD" in out and "False" in out.split("CHILD", 1)[1]  # no top-level `models` module


def test_built_wheel(tmp_path):
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(dist), str(REPO)], check=True, capture_output=True, timeout=300)
    wheel = next(dist.glob("ctrlspeak-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "ctrlspeak/models/registry.py" in names and "ctrlspeak/workers/main.py" in names
    assert "ctrlspeak/patches/tqdm_lock.py" in names
    assert not any(n.split("/")[0] in ("models", "workers", "patches", "tests", "scripts") for n in names)
    if (REPO / "models" / "data" / "tiny-en.nemo").exists():
        assert "ctrlspeak/models/data/tiny-en.nemo" in names
    # `ctrlspeak bench` needs the bundled sample outside a checkout too
    assert {"ctrlspeak/models/data/sample-en.wav", "ctrlspeak/models/data/sample-en.txt"} <= set(names)
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                   check=True, capture_output=True, timeout=300)
    out = _run_check(tmp_path, {"PYTHONPATH": str(target)})
    assert f"PARENT {target / 'ctrlspeak' / 'models' / '__init__.py'}" in out
    assert f"CHILD {target / 'ctrlspeak' / 'models' / '__init__.py'} {target / 'ctrlspeak' / 'workers' / 'main.py'} False" in out
