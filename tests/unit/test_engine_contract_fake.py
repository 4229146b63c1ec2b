"""The engine contract (tests/support/engine_contract.py) on the fake engine of the unit
tests: where the fake answers otherwise than Docker, a test fails here."""

from __future__ import annotations

import pytest
from support.engine_contract import EngineContract, FakeDriver
from support.fake_engine import FakeAPIClient


@pytest.fixture
def engine():
    api = FakeAPIClient()
    driver = FakeDriver(api)
    yield driver
    driver.cleanup()
    api.close_streams()


@pytest.fixture
def own_engine(engine):
    return engine


class TestFakeEngine(EngineContract):
    pass


# What the fake does not model it refuses, rather than answer otherwise than Docker.


def test_a_filter_docker_knows_and_the_fake_does_not_model_is_refused(engine):
    with pytest.raises(NotImplementedError, match="filter status"):
        engine.api.containers(filters={"status": "running"})


def test_a_host_config_or_create_option_the_fake_does_not_model_is_refused(engine):
    api = engine.api
    with pytest.raises(NotImplementedError, match="Privileged"):
        api.create_container(
            "salvage-test/busybox:latest", host_config=api.create_host_config(privileged=True)
        )
    with pytest.raises(TypeError, match="stop_signal"):
        api.create_container("salvage-test/busybox:latest", stop_signal="SIGINT")


def test_a_wait_for_ever_and_an_unmodelled_signal_are_refused(engine):
    from support.engine_contract import SLEEPS

    container = engine.run("app", SLEEPS, init=True)
    with pytest.raises(NotImplementedError, match="never ends"):
        engine.api.wait(container)
    with pytest.raises(NotImplementedError, match="SIGHUP"):
        engine.api.kill(container, "SIGHUP")


def test_a_container_the_fake_cannot_bring_to_a_state_is_refused():
    with pytest.raises(ValueError, match="cannot be made running"):
        FakeAPIClient().add_container("loop", exits=3)
