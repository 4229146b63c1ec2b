"""B4: `salvage --version` and `--help` against the floor of any click program."""

from __future__ import annotations

import os
import sys
from typing import List

from benchmarks.measure import (
    Result,
    interleaved,
    ratio,
    salvage_command,
    source_env,
    timed,
)

BAR = 1.5
ROUNDS = 15


def b4_startup(rounds: int = ROUNDS) -> List[Result]:
    env = source_env(dict(os.environ))
    figures = interleaved(
        rounds,
        {
            "click": lambda: timed([sys.executable, "-c", "import click"], env),
            "--version": lambda: timed(salvage_command("--version"), env),
            "--help": lambda: timed(salvage_command("--help"), env),
        },
    )
    click = ('python3 -c "import click"', figures["click"])
    return [
        ratio("B4", f"start-up {option}", BAR, (f"salvage {option}", figures[option]), click)
        for option in ("--version", "--help")
    ]
