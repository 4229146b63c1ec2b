"""The engine every real-engine suite (integration, faults) uses: the one named by
SALVAGE_TEST_DOCKER_HOST, or else a private `dockerd` of this test process (its own socket,
data and exec roots under /tmp, its own bridge and subnet), started on first use and stopped
by its pid at the end.

Under pytest-xdist each worker is a test process of its own, so each has its own engine:
a worker runs one test at a time, and a fault that restarts or freezes its engine touches
no other worker's test. Images come from the host's static busybox and from debootstrapped
roots cached for the machine (support/cache.py): no registry is needed.
"""

from __future__ import annotations

import os

import docker
import pytest
from support import report as fault_table
from support.dockerd import PrivateDockerd, ping
from support.harness import build_images


def worker() -> str:
    """This process's xdist worker id ("gw0", ...), or "" when pytest runs alone."""
    return os.environ.get("PYTEST_XDIST_WORKER", "")


@pytest.fixture(scope="session")
def private_engine():
    """This test process's own engine, which a test may restart or freeze."""
    engine = PrivateDockerd(bridge=f"slv{os.getpid() % 1000000}")
    try:
        engine.start()
    except RuntimeError as error:
        pytest.fail(str(error))
    yield engine
    engine.remove()


@pytest.fixture(scope="session")
def docker_host(request):
    host = os.environ.get("SALVAGE_TEST_DOCKER_HOST")
    if host:
        if not ping(host):
            pytest.fail(f"SALVAGE_TEST_DOCKER_HOST={host} does not answer")
    else:
        host = request.getfixturevalue("private_engine").host
    os.environ["DOCKER_HOST"] = host
    return host


@pytest.fixture(scope="session")
def api(docker_host):
    client = docker.APIClient(base_url=docker_host, version="auto", timeout=120)
    yield client
    client.close()


@pytest.fixture(scope="session")
def images(docker_host):
    """The busybox base, the reference tar crane built from it, and a script crane."""
    return build_images(docker_host)


def pytest_runtest_logreport(report):
    fault_table.collect(report)


def pytest_terminal_summary(terminalreporter):
    fault_table.write(terminalreporter)


def pytest_itemcollected(item):
    if item.path.parent.name == "unit":
        item.add_marker(pytest.mark.unit)


def pytest_runtest_setup(item):
    """A group (xdist_group) whose tests a worker must run in order, on one setup, is
    silently spread over the workers where pytest-xdist cannot group (it adds the group to
    the node id): such a test fails rather than run out of order."""
    if getattr(item.config.option, "loadgroup", False) and "@" not in item.nodeid:
        if item.get_closest_marker("xdist_group"):
            pytest.fail("pytest-xdist did not group this test (pytest-xdist#1386): pytest<9.2")
