"""Fixtures for tests against a real Docker engine and real docker-compose.

The engine (`docker_host`, `api`) and the images (`images`) come from tests/conftest.py.
"""

from __future__ import annotations

import pytest
from support.harness import (  # noqa: F401 - re-exported for the tests
    BUSYBOX,
    ROOT,
    SCRIPT_CRANE,
    TAR_CRANE,
    Salvage,
    Stack,
    build_images,
    events,
)

pytestmark = pytest.mark.docker


@pytest.fixture
def stack(api, docker_host, images, tmp_path):
    made = Stack(api, docker_host, tmp_path)
    yield made
    made.cleanup()


@pytest.fixture
def salvage(docker_host, tmp_path, stack):
    return Salvage(docker_host, tmp_path, stack.tide)
