"""Unit tests on the fake engine (tests/support/fake_engine.py): no root, no dockerd."""

from __future__ import annotations

import logging

import pytest
from support.fake_engine import FakeAPIClient

from salvage.config.validate import validate
from salvage.safety import downtime

CRANE_IMAGE = "salvage/crane-tar:latest"


@pytest.fixture
def fake():
    api = FakeAPIClient()
    api.images[CRANE_IMAGE] = {}
    yield api
    api.close_streams()


@pytest.fixture
def config(tmp_path):
    """A configuration whose state directory (record, lock) is the test's own."""
    found, problems = validate(
        {"state_directory": str(tmp_path / "state"), "tides": {"daily": {}}}, "test.toml"
    )
    assert not problems
    return found


@pytest.fixture(autouse=True)
def no_signal_left():
    """A signal a test sent, a downtime a test left open, are this process's for good
    (salvage exits after them): not the next test's."""
    yield
    downtime._received.clear()
    downtime._open.clear()


@pytest.fixture(autouse=True)
def logger_kept():
    """Commands run in-process (CliRunner) set up salvage's logger (log.setup): put it back
    for the next test, whose caplog would otherwise see nothing."""
    logger = logging.getLogger("salvage")
    kept = (logger.handlers[:], logger.propagate, logger.level)
    yield
    logger.handlers[:], logger.propagate, logger.level = kept
