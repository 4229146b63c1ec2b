"""B6: the tar crane against a plain `tar -czf` of the same data in the same image."""

from __future__ import annotations

import shutil
from typing import List

from benchmarks import crane
from benchmarks.engine import Engine
from benchmarks.measure import Result, interleaved, ratio

BAR = 1.25
ROUNDS = 5


def b6_throughput(engine: Engine, volume: str, rounds: int = ROUNDS) -> List[Result]:
    def tidy(seconds: float) -> float:
        shutil.rmtree(engine.tmp / "backups", ignore_errors=True)
        return seconds

    plain = ["-C", "/salvage", "-czf", "/salvage/target/plain.tar.gz", "volume", "meta"]
    figures = interleaved(
        rounds,
        {
            "crane": lambda: tidy(crane.run(engine, volume)),
            "tar": lambda: tidy(crane.run(engine, volume, entrypoint=["tar"], command=plain)),
        },
    )
    return [
        ratio(
            "B6",
            "crane throughput",
            BAR,
            ("tar crane", figures["crane"]),
            ("tar -czf in the crane's image", figures["tar"]),
        )
    ]
