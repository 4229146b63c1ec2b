"""`salvage check`: every problem in the configuration and in the labels on this host."""

from __future__ import annotations

from typing import List

from salvage.config import Config
from salvage.engine.client import Engine
from salvage.engine.discovery import discover
from salvage.model import Problem
from salvage.planning import check_host
from salvage.systemd import calendar, generator


def offline(config: Config) -> List[Problem]:
    """What can be checked without the engine: schedules and tide names as systemd will
    take them (timers, unit names)."""
    return list(calendar.problems(config).values()) + generator.problems(config)


def labels(engine: Engine, config: Config) -> List[Problem]:
    """The labels on the engine's containers, against the configuration."""
    return check_host(discover(engine), config)
