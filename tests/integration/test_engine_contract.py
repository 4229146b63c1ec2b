"""The engine contract (tests/support/engine_contract.py) on a real dockerd: the behaviour
the fake engine of the unit tests is held to. The dead container and the engine restart
run on an engine of this module's own (the restart would disturb the session's)."""

from __future__ import annotations

import os
import subprocess

import docker
import pytest
from support.dockerd import PrivateDockerd
from support.engine_contract import BUSYBOX, EngineContract, RealDriver
from support.harness import ROOT

pytestmark = [pytest.mark.docker, pytest.mark.boundary]


@pytest.fixture
def engine(api, images):
    driver = RealDriver(api)
    yield driver
    driver.cleanup()


@pytest.fixture(scope="module")
def private_engine():
    made = PrivateDockerd(prefix="salvage-contract-", bridge=f"slvk{os.getpid() % 100000}")
    try:
        made.start()
    except RuntimeError as error:
        pytest.fail(str(error))
    env = dict(os.environ, DOCKER_HOST=made.host)
    image = [str(ROOT / "scripts/busybox-image"), BUSYBOX]
    subprocess.run(image, check=True, env=env, stdout=subprocess.DEVNULL)
    yield made
    made.remove()


@pytest.fixture
def own_engine(private_engine):
    clients = [docker.APIClient(base_url=private_engine.host, version="auto", timeout=120)]

    def restart() -> None:
        private_engine.restart()
        clients.append(docker.APIClient(base_url=private_engine.host, version="auto", timeout=120))
        driver.api = clients[-1]

    driver = RealDriver(clients[0], restart)
    yield driver
    driver.cleanup()
    for client in clients:
        client.close()


class TestDockerEngine(EngineContract):
    pass
