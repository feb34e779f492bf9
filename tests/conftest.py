"""Shared fixtures: paths, the tiny test models (built once into a cache), helpers."""
from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
from pathlib import Path

import pytest

from tests.faults import SCENARIOS, record

REPO = Path(__file__).resolve().parent.parent
SCRIPTS = REPO / "scripts"
CACHE = REPO / ".cache"


def load_script(name: str):
    """Import a file from scripts/ by path (scripts/ is not a package)."""
    path = SCRIPTS / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"ctrlspeak_scripts_{name}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def load_tinyen():
    """Import scripts/tinyen (tiny-en's training package) by path, as ``tinyen``."""
    if "tinyen" not in sys.modules:
        pkg = SCRIPTS / "tinyen"
        spec = importlib.util.spec_from_file_location("tinyen", pkg / "__init__.py",
                                                      submodule_search_locations=[str(pkg)])
        module = importlib.util.module_from_spec(spec)
        sys.modules["tinyen"] = module
        spec.loader.exec_module(module)
    return sys.modules["tinyen"]


@pytest.fixture(scope="session")
def test_models() -> dict[str, Path]:
    """Tiny random-weight models of every family, rebuilt when the build script changes."""
    script = SCRIPTS / "build_test_models.py"
    digest = hashlib.sha256(script.read_bytes()).hexdigest()[:12]
    out = CACHE / "test-models" / digest
    builder = load_script("build_test_models")
    return builder.build_test_models(out)


@pytest.fixture
def isolated_env(tmp_path, monkeypatch) -> Path:
    """A private HOME/XDG tree so no test reads or writes the user's real files."""
    for var, sub in (("HOME", "home"), ("XDG_CONFIG_HOME", "config"), ("XDG_DATA_HOME", "data"),
                     ("XDG_STATE_HOME", "state"), ("XDG_CACHE_HOME", "cache")):
        (tmp_path / sub).mkdir()
        monkeypatch.setenv(var, str(tmp_path / sub))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.delenv("CTRLSPEAK_CONFIG", raising=False)
    for key in list(os.environ):
        if key.startswith("CTRLSPEAK_"):
            monkeypatch.delenv(key)
    return tmp_path


@pytest.fixture
def fault_row():
    """``fault_row(scenario, outcome)``: call it at the end of a fault-injection test, after
    its assertions, to add the scenario to the table printed at the end of the run."""
    return record


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """The fault-injection table (issues: nothing is lost; nothing lost, round two)."""
    if not SCENARIOS:
        return
    terminalreporter.section("fault injection: scenario -> result")
    width = max(len(name) for name, _ in SCENARIOS)
    for name, outcome in SCENARIOS:
        terminalreporter.write_line(f"{name.ljust(width)}  {outcome}")


# -- the test hub (tests/hub_server.py) -------------------------------------------------
#: which of our own models the test hub serves under each registry repo id: the bundled
#: tiny-en stands in for Parakeet v3 (the default), so a "downloaded parakeet" really
#: transcribes; the tiny random-weight models fill the other families' places
HUB_MODELS = {"parakeet": "tiny-en", "parakeet-v2": "tdt", "parakeet-1.1b": "tdt", "parakeet-ctc": "ctc",
              "canary": "canary", "canary-180m": "canary", "canary-v2": "canary"}


@pytest.fixture(scope="session")
def hub_files(test_models) -> list[tuple[str, str, Path]]:
    from ctrlspeak.models import registry

    files = []
    for alias, model in HUB_MODELS.items():
        ref = registry.resolve(alias)
        source = registry.bundled_path(registry.spec_for("tiny-en")) if model == "tiny-en" else test_models[model]
        files.append((ref.hf_id, ref.filename, source))
    return files


@pytest.fixture
def test_hub(hub_files):
    from tests.hub_server import TestHub

    with TestHub(hub_files) as hub:
        yield hub


@pytest.fixture
def workers(monkeypatch):
    """Fake worker clients (tests/fakes.py) in place of worker processes, fresh for each test."""
    from tests.fakes import use_fake_workers

    return use_fake_workers(monkeypatch)
