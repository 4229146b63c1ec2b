"""The fault-injection suite: salvage killed, the engine restarted, cranes that fail or hang,
commands that fail, people changing containers mid-run.

It runs on the test process's private engine (tests/conftest.py), never on a shared one,
because one fault restarts the engine. Each test ends by checking what a user would check,
and adds a row to the table printed at the end (support/report.py): fault, expected,
observed.
"""

from __future__ import annotations

import pytest
from support.harness import build_images
from support.report import FAULT_ROW
from support.scene import Scene

pytestmark = pytest.mark.docker


@pytest.fixture(scope="session")
def fault_engine(private_engine):
    """The test process's private engine (never SALVAGE_TEST_DOCKER_HOST's): a fault may
    restart or freeze it."""
    build_images(private_engine.host)
    return private_engine


@pytest.fixture
def scene(fault_engine, tmp_path):
    made = Scene(fault_engine, tmp_path)
    yield made
    made.cleanup()


@pytest.fixture
def table(request):
    def add(fault: str, expected: str, observed: str) -> None:
        request.node.user_properties.append((FAULT_ROW, (fault, expected, observed)))
        assert observed == expected, f"{fault}: expected {expected}, observed {observed}"

    return add
