"""The fault-injection table: every fault a test injects, and what ctrlspeak did about it.

A test appends its row once its assertions have passed (so a row means "held"); the table is
printed at the end of the run (tests/conftest.py). Unit, integration and desktop tests all
write here, each with the real part where the real part is the point.
"""
from __future__ import annotations

#: (scenario, outcome), in the order the tests ran
SCENARIOS: list[tuple[str, str]] = []


def record(scenario: str, outcome: str) -> None:
    """Add a row; a parametrized test that records the same scenario again adds nothing."""
    if all(name != scenario for name, _ in SCENARIOS):
        SCENARIOS.append((scenario, outcome))
