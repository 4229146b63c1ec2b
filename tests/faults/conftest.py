"""The fault-injection suite: salvage killed, the engine restarted, cranes that fail or hang,
commands that fail, people changing containers mid-run.

It runs on an engine of its own (a private dockerd on a bridge of its own), because one
fault restarts the engine. Each test ends by checking what a user would check, and adds a
row to the table printed at the end: fault, expected, observed.
"""

from __future__ import annotations

import os

import pytest
from support.dockerd import PrivateDockerd
from support.harness import build_images
from support.scene import Scene

pytestmark = pytest.mark.docker
ROWS: list = []


def pytest_terminal_summary(terminalreporter):
    if not ROWS:
        return
    width = max(len(r[0]) for r in ROWS)
    terminalreporter.section("fault injection")
    for fault, expected, observed in ROWS:
        mark = "holds" if expected == observed else "BROKEN"
        terminalreporter.write_line(f"{fault:<{width}}  [{mark}]")
        terminalreporter.write_line(f"{'':<{width}}  expected: {expected}")
        terminalreporter.write_line(f"{'':<{width}}  observed: {observed}")


@pytest.fixture(scope="session")
def fault_engine():
    engine = PrivateDockerd(prefix="salvage-faults-", bridge=f"slvf{os.getpid() % 100000}")
    try:
        engine.start()
    except RuntimeError as error:
        pytest.fail(str(error))
    build_images(engine.host)
    yield engine
    engine.remove()


@pytest.fixture
def scene(fault_engine, tmp_path):
    made = Scene(fault_engine, tmp_path)
    yield made
    made.cleanup()


@pytest.fixture
def table():
    def add(fault: str, expected: str, observed: str) -> None:
        ROWS.append((fault, expected, observed))
        assert observed == expected, f"{fault}: expected {expected}, observed {observed}"

    return add
