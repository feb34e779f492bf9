"""Which compute device ``auto`` would pick, told without importing torch.

The daemon side must never import torch, so this reads the installed torch's build
information from its ``version.py`` and looks for a GPU driver on the system. The worker
makes the authoritative choice (and reports it in ``WorkerReady``).
"""
from __future__ import annotations

import importlib.util
import os
import platform
import re
import shutil
import sys
from pathlib import Path


def torch_build() -> dict[str, str | None]:
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        return {"version": None, "cuda": None}
    text = ""
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "version.py"
        if candidate.is_file():
            text = candidate.read_text(encoding="utf-8", errors="replace")
            break
    version = re.search(r"^__version__\s*=\s*['\"]([^'\"]+)", text, re.M)
    cuda = re.search(r"^cuda\s*(?::[^=]*)?=\s*['\"]([^'\"]+)", text, re.M)
    return {"version": version.group(1) if version else None, "cuda": cuda.group(1) if cuda else None}


def nvidia_driver_present() -> bool:
    return Path("/proc/driver/nvidia/version").exists() or shutil.which("nvidia-smi") is not None


def likely_device(preference: str = "auto") -> tuple[str, str]:
    """(device, reason) that ``preference`` resolves to on this machine."""
    build = torch_build()
    if build["version"] is None:
        return "none", "torch is not installed"
    cuda_ok = build["cuda"] is not None and nvidia_driver_present()
    mps_ok = sys.platform == "darwin" and platform.machine() == "arm64"
    if preference == "auto":
        if cuda_ok:
            return "cuda", f"torch {build['version']} built for CUDA {build['cuda']}, NVIDIA driver present"
        if mps_ok:
            return "mps", "Apple silicon"
        why = "torch has no CUDA build" if build["cuda"] is None else "no NVIDIA driver found"
        return "cpu", f"{why}; threads={os.cpu_count()}"
    return preference, "chosen explicitly"
