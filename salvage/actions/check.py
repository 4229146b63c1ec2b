"""`salvage check`: every problem in the configuration and in the labels on this host."""

from __future__ import annotations

import os
from typing import List

from salvage.config import Config
from salvage.core.model import Problem
from salvage.systemd import calendar, generator


def offline(config: Config) -> List[Problem]:
    """What can be checked without the engine (the file itself was checked as it was
    loaded): schedules and tide names as systemd will take them (timers, unit names), and
    the cranes' secret files."""
    return list(calendar.problems(config).values()) + generator.problems(config) + secrets(config)


def secrets(config: Config) -> List[Problem]:
    """Each secret file exists, is a file and can be read (a run would fail its tide)."""
    found = []
    for crane in config.cranes.values():
        for name, path in crane.secrets.items():
            where = f"{config.path}: cranes.{crane.name}.secrets.{name}"
            if not os.path.exists(path):
                found.append(Problem(where, f"no file {path}"))
            elif not os.path.isfile(path):
                found.append(Problem(where, f"{path} is not a file"))
            elif not os.access(path, os.R_OK):
                found.append(Problem(where, f"{path} cannot be read (permission denied)"))
            if f"{name}_FILE" in crane.env:
                found.append(Problem(where, f"env {name}_FILE is set by salvage for this secret"))
    return found


def labels(engine, config: Config) -> List[Problem]:
    """The labels on the engine's containers, against the configuration."""
    from salvage.core import dumps
    from salvage.core.planning import check_host
    from salvage.engine.discovery import discover

    host = discover(engine, config.tides.values())
    return check_host(host, config) + dumps.check(host, config.tides)
