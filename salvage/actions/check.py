"""`salvage check`: every problem in the configuration and in the labels on this host."""

from __future__ import annotations

from typing import List

from salvage.config import Config
from salvage.engine.client import Engine
from salvage.engine.discovery import discover
from salvage.model import Problem
from salvage.planning import check_host
from salvage.systemd import calendar, generator


def check(engine: Engine, config: Config) -> List[Problem]:
    # Schedules and tide names as systemd will take them (timers, unit names).
    systemd = calendar.problems(config) + generator.problems(config)
    return systemd + check_host(discover(engine, config.tides), config)
