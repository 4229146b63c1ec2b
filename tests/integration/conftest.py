"""Fixtures for tests against a real Docker engine and real docker-compose.

The engine is the one named by SALVAGE_TEST_DOCKER_HOST, or else a private `dockerd`
started here (its own socket, data and exec roots under /tmp) and stopped by its pid at
the end. Images come from the host's static busybox: no registry is needed.
"""

from __future__ import annotations

import os

import docker
import pytest
from support.dockerd import PrivateDockerd, ping
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


@pytest.fixture(scope="session")
def docker_host():
    host = os.environ.get("SALVAGE_TEST_DOCKER_HOST")
    if host:
        if not ping(host):
            pytest.fail(f"SALVAGE_TEST_DOCKER_HOST={host} does not answer")
        os.environ["DOCKER_HOST"] = host
        yield host
        return
    # A bridge of its own: another test session or engine on this host may use docker0.
    engine = PrivateDockerd(bridge=f"slvi{os.getpid() % 100000}")
    try:
        engine.start()
    except RuntimeError as error:
        pytest.fail(str(error))
    os.environ["DOCKER_HOST"] = engine.host
    yield engine.host
    engine.remove()


@pytest.fixture(scope="session")
def api(docker_host):
    client = docker.APIClient(base_url=docker_host, version="auto", timeout=120)
    yield client
    client.close()


@pytest.fixture(scope="session")
def images(api, docker_host):
    """The busybox base, the reference tar crane built from it, and a script crane."""
    return build_images(docker_host)


@pytest.fixture
def stack(api, docker_host, images, tmp_path):
    made = Stack(api, docker_host, tmp_path)
    yield made
    made.cleanup()


@pytest.fixture
def salvage(docker_host, tmp_path, stack):
    return Salvage(docker_host, tmp_path, stack.tide)
