"""B1 and B2: how long a container is down, from Docker's own die and start events.

B1: under `salvage run` against the floor a person would write by hand (docker stop; the
same crane with `docker run --rm`; docker start). B2: four volumes with four cranes at
once against one at a time.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import time
from typing import Callable, List

from benchmarks import crane
from benchmarks.engine import LABEL, TAR_CRANE, Engine
from benchmarks.measure import (
    Result,
    interleaved,
    ratio,
    retried,
    run_salvage,
    write_config,
)

B1_BAR, B2_BAR = 1.05, 0.6
B1_ROUNDS, B2_ROUNDS = 7, 5


def _downtime(engine: Engine, container: str, action: Callable[[], object]) -> float:
    def once() -> float:
        since = time.time()
        action()
        return engine.events.downtime(container, since)

    seconds = retried(once)
    shutil.rmtree(engine.tmp / "backups", ignore_errors=True)  # keep the disk from filling up
    return seconds


def _script(engine: Engine, container: str, volume: str) -> List[str]:
    """docker stop; docker run --rm <the crane, salvage's env and mounts>; docker start."""
    run = ["docker", "run", "--rm", "--label", f"{LABEL}={engine.run_id}"]
    for bind in crane.binds(engine, volume):
        run += ["-v", bind]
    for key, value in crane.env(volume).items():
        run += ["-e", f"{key}={value}"]
    lines = [
        "set -e",
        f"docker stop {container} >/dev/null",
        shlex.join([*run, TAR_CRANE]) + " >/dev/null",
        f"docker start {container} >/dev/null",
    ]
    path = engine.tmp / "by-hand.sh"
    path.write_text("\n".join(lines) + "\n")
    return ["sh", str(path)]


def b1_overhead(engine: Engine, volume: str, rounds: int = B1_ROUNDS) -> List[Result]:
    tide = engine.tide("b1")
    container = engine.service("b1", [volume], {f"salvage.tide.{tide}": f"g:{volume}"})
    config = write_config(engine.tmp / "b1.toml", engine.tmp, {tide: 1}, TAR_CRANE)
    script = _script(engine, container, volume)
    figures = interleaved(
        rounds,
        {
            "salvage": lambda: _downtime(
                engine, container, lambda: run_salvage(config, engine.env, "run", "--tide", tide)
            ),
            "script": lambda: _downtime(
                engine, container, lambda: subprocess.run(script, env=engine.env, check=True)
            ),
        },
    )
    return [
        ratio(
            "B1",
            "downtime overhead",
            B1_BAR,
            ("salvage run", figures["salvage"]),
            ("docker stop/run --rm/start script", figures["script"]),
        )
    ]


def b2_parallel(engine: Engine, volumes: List[str], rounds: int = B2_ROUNDS) -> List[Result]:
    one, four = engine.tide("b2one"), engine.tide("b2four")
    refs = ",".join(f"g:{v}" for v in volumes)
    container = engine.service(
        "b2", volumes, {f"salvage.tide.{one}": refs, f"salvage.tide.{four}": refs}
    )
    config = write_config(engine.tmp / "b2.toml", engine.tmp, {one: 1, four: 4}, TAR_CRANE)

    def run(tide: str) -> float:
        return _downtime(
            engine, container, lambda: run_salvage(config, engine.env, "run", "--tide", tide)
        )

    figures = interleaved(rounds, {"1": lambda: run(one), "4": lambda: run(four)})
    return [
        ratio(
            "B2",
            "parallel cranes",
            B2_BAR,
            ("max_concurrent = 4:", figures["4"]),
            ("max_concurrent = 1:", figures["1"]),
        )
    ]
