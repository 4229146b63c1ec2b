"""B10: parallel stops. Three containers of one group, each taking 2 s to stop (a shell
trapping SIGTERM), no depends_on between them: salvage's stop phase against one
`docker stop a b c` of the same containers (which the docker CLI stops at once).

The stop phase, from Docker's own events: the first `kill` (the stop signal) of any of the
three to the last `die`.
"""

from __future__ import annotations

import subprocess
import time
from typing import List

from benchmarks.engine import TAR_CRANE, Engine
from benchmarks.measure import Result, interleaved, ratio, retried, run_salvage, write_config

B10_BAR = 1.3
B10_ROUNDS = 5
SLOW_STOP = "trap 'sleep 2; exit 0' TERM; sleep 3600 & wait"


def _stop_phase(engine: Engine, ids: List[str], since: float, wait: float = 10.0) -> float:
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        mine = [e for e in list(engine.events.seen) if e["timeNano"] >= since * 1e9]
        kills = [
            next((e["timeNano"] for e in mine if e.get("id") == i and e["Action"] == "kill"), None)
            for i in ids
        ]
        dies = [
            next((e["timeNano"] for e in mine if e.get("id") == i and e["Action"] == "die"), None)
            for i in ids
        ]
        if None not in kills + dies:
            return (max(dies) - min(kills)) / 1e9
        time.sleep(0.05)
    raise RuntimeError("no kill and die events for the three containers")


def b10_parallel_stops(engine: Engine, rounds: int = B10_ROUNDS) -> List[Result]:
    tide = engine.tide("b10")
    volume = engine.volume("b10")
    ids = [
        engine.service(
            f"b10{x}",
            [volume],
            {f"salvage.tide.{tide}": f"g:{volume}"} if x == "a" else {},
            command=["sh", "-c", SLOW_STOP],
        )
        for x in "abc"
    ]
    config = write_config(engine.tmp / "b10.toml", engine.tmp, {tide: 1}, TAR_CRANE)

    def salvage() -> float:
        since = time.time()
        run_salvage(config, engine.env, "run", "--tide", tide)
        return _stop_phase(engine, ids, since)

    def by_hand() -> float:
        since = time.time()
        subprocess.run(
            ["docker", "stop", *ids], env=engine.env, check=True, stdout=subprocess.DEVNULL
        )
        phase = _stop_phase(engine, ids, since)
        subprocess.run(
            ["docker", "start", *ids], env=engine.env, check=True, stdout=subprocess.DEVNULL
        )
        return phase

    figures = interleaved(rounds, {"salvage": lambda: retried(salvage), "docker": by_hand})
    return [
        ratio(
            "B10",
            "parallel stops",
            B10_BAR,
            ("salvage run, stop phase", figures["salvage"]),
            ("docker stop a b c", figures["docker"]),
        )
    ]
