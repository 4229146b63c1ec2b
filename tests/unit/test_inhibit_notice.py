"""Without logind the run goes on, and says so once: a warning under systemd (where it
matters), a notice at a terminal or anywhere else. A real bus address with nothing there."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest

from salvage.systemd.inhibit import Inhibitor


@pytest.mark.parametrize(
    "env, level",
    [
        ({"INVOCATION_ID": "8f2c0d6e5a1b4c3d9e7f6a5b4c3d2e1f"}, logging.WARNING),
        ({"NOTIFY_SOCKET": "/run/systemd/notify"}, logging.WARNING),
        ({}, logging.INFO),
    ],
)
def test_no_logind_is_a_warning_under_systemd_and_a_notice_elsewhere(
    env, level, monkeypatch, tmp_path, caplog
):
    for name in ("INVOCATION_ID", "NOTIFY_SOCKET"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", f"unix:path={tmp_path}/no-bus")
    inhibitor = Inhibitor(SimpleNamespace(what="shutdown:sleep", required=False))
    run = SimpleNamespace(tide=SimpleNamespace(name="daily"))
    logger = logging.getLogger("salvage")  # as log.setup() leaves it: caught here only
    monkeypatch.setattr(logger, "propagate", False)
    logger.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.DEBUG, logger="salvage"):
            for group in ("shop", "blog"):  # once, not per group
                inhibitor.containers_leaving(run, SimpleNamespace(name=group))
                inhibitor.containers_back(run, SimpleNamespace(name=group))
    finally:
        logger.removeHandler(caplog.handler)
    said = [(r.levelno, r.getMessage()) for r in caplog.records if "inhibitor" in r.getMessage()]
    assert said == [
        (
            level,
            f"no logind inhibitor lock (no system bus at unix:path={tmp_path}/no-bus: No such"
            " file or directory): nothing holds off shutdown or sleep while containers are"
            " down",
        )
    ]
