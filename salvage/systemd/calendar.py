"""Tide schedules checked by systemd itself (`systemd-analyze calendar`), where it is
installed: the timers take them as they are, and would only complain in the journal."""

from __future__ import annotations

import shutil
import subprocess
from typing import Dict

from salvage.config.schema import Config
from salvage.core.model import Problem
from salvage.systemd.schedule import SHORTHANDS

TIMEOUT = 10.0


def problems(config: Config) -> Dict[str, Problem]:
    """tide name -> why systemd would not take its schedule."""
    analyze = shutil.which("systemd-analyze")
    if not analyze:
        return {}
    found = {}
    for tide in config.tides.values():
        for key in ("schedule", "verify_schedule"):
            expression = getattr(tide, key) or ""
            if expression.strip().lower() in SHORTHANDS:  # no subprocess (the generator's boot)
                continue
            if expression and not _accepted(analyze, expression) and tide.name not in found:
                where = f"{config.path}: tides.{tide.name}.{key}"
                found[tide.name] = Problem(
                    where,
                    f"{expression!r} is not a systemd calendar expression (see `man systemd.time`)",
                )
    return found


def _accepted(analyze: str, expression: str) -> bool:
    try:
        done = subprocess.run(
            [analyze, "calendar", "--iterations=1", "--", expression],
            capture_output=True,
            timeout=TIMEOUT,
        )
    except (OSError, subprocess.TimeoutExpired):
        return True  # cannot tell here: the timer will say
    return done.returncode == 0
