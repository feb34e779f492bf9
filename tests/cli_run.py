"""Running the real ``ctrlspeak`` command line in a private environment (the download tests)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "all_proxy",
              "no_proxy")


def cli_env(home: Path, endpoint: str | None = None, **extra: str) -> dict[str, str]:
    """A child's environment: a private HOME/XDG tree, HF cache and control socket, the hub at
    ``endpoint``, no proxies and no forced offline mode unless ``extra`` sets them."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CTRLSPEAK_", "HF_")) and k not in PROXY_VARS}
    for var, sub in (("HOME", "home"), ("XDG_CONFIG_HOME", "config"), ("XDG_DATA_HOME", "data"),
                     ("XDG_STATE_HOME", "state"), ("XDG_CACHE_HOME", "cache")):
        (home / sub).mkdir(parents=True, exist_ok=True)
        env[var] = str(home / sub)
    env["HF_HUB_CACHE"] = str(home / "hf")
    env["CTRLSPEAK_RUNTIME_DIR"] = str(home / "run")  # never the developer's own running daemon
    env["PYTHONUNBUFFERED"] = "1"
    if endpoint:
        env["HF_ENDPOINT"] = endpoint
    env.update(extra)
    return env


def run_cli(env: dict[str, str], *args: str, timeout: float = 120):
    return subprocess.run([sys.executable, "-m", "ctrlspeak", *args], env=env, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)
