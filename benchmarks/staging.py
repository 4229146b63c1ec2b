"""B7: staged against classic downtime (tide `staging`), on the engine's own data root.
B8: the staged downtime does not grow with the volume's size where reflinks work (XFS).

Three containers over two 100 MB volumes of random bytes (one group: one container uses
both), the tar crane on a Debian base (GNU cp, so it can stage). The group's downtime is
the longest of its containers' (Docker's die to start events).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from typing import List

from benchmarks.engine import MB, ROOT, Engine
from benchmarks.measure import Result, interleaved, ratio, retried, run_salvage, write_config

B7_BAR = 0.25
B7_ROUNDS = 5
GNU_TAR = "salvage-bench/crane-tar-gnu:latest"


def build_gnu_tar(engine: Engine) -> str:
    """The tar crane on the tests' debootstrapped Debian image (no registry needed)."""
    if str(ROOT / "tests") not in sys.path:
        sys.path.insert(0, str(ROOT / "tests"))  # tests/support imports itself as `support`
    from support.debian import debian_image

    command = [
        "docker",
        "build",
        "-q",
        "--build-arg",
        f"BASE={debian_image(engine.host)}",
        "-t",
        GNU_TAR,
        str(ROOT / "salvage/crane/images/tar"),
    ]
    done = subprocess.run(command, env=engine.env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)}: {done.stderr.strip()}")
    return GNU_TAR


def b7_staging(engine: Engine, volumes: List[str], rounds: int = B7_ROUNDS) -> List[Result]:
    image = build_gnu_tar(engine)
    staged, classic = engine.tide("b7staged"), engine.tide("b7classic")
    refs = ",".join(f"g:{v}" for v in volumes)
    both = {f"salvage.tide.{staged}": refs, f"salvage.tide.{classic}": refs}
    containers = [
        engine.service("b7a", volumes[:1], {}),
        engine.service("b7b", volumes[1:], {}),
        engine.service("b7c", volumes, both),
    ]
    config = write_config(engine.tmp / "b7.toml", engine.tmp, {staged: 1, classic: 1}, image)
    text = config.read_text()
    for tide, mode in ((staged, "always"), (classic, "never")):
        text = text.replace(f"[tides.{tide}]\n", f'[tides.{tide}]\nstaging = "{mode}"\n')
    config.write_text(text)

    def run(tide: str) -> float:
        def once() -> float:
            since = time.time()
            run_salvage(config, engine.env, "run", "--tide", tide)
            return max(engine.events.downtime(c, since) for c in containers)

        seconds = retried(once)
        shutil.rmtree(engine.tmp / "backups", ignore_errors=True)  # keep the disk from filling
        return seconds

    engine.settle()
    figures = interleaved(rounds, {"staged": lambda: run(staged), "classic": lambda: run(classic)})
    return [
        ratio(
            "B7",
            "staged downtime",
            B7_BAR,
            ("staging = always", figures["staged"]),
            ("staging = never", figures["classic"]),
        )
    ]


B8_SIZE_BAR, B8_BARE_BAR = 1.2, 1.3
B8_ROUNDS = 5


def b8_size(rounds: int = B8_ROUNDS) -> List[Result]:
    """A dockerd of its own whose data root is XFS on a loop-mounted file (reflinks): the
    staged downtime of three containers over a 1 GB volume against the same over a 10 MB
    volume, and against a bare `docker stop a b c; docker start a b c` of the 1 GB ones."""
    if str(ROOT / "tests") not in sys.path:
        sys.path.insert(0, str(ROOT / "tests"))
    from support.loop_dockerd import LoopDockerd

    bridge = f"slvx{os.getpid() % 100000}"
    engine = Engine(LoopDockerd("xfs", 4096, "salvage-bench-xfs-", bridge=bridge))
    try:
        print(f"B8 engine {engine.host} (XFS data root)", flush=True)
        engine.build_images()
        image = build_gnu_tar(engine)
        small, big = engine.volume("b8-10m"), engine.volume("b8-1g")
        engine.fill([small], 10 * MB)
        engine.fill([big], 1024 * MB)
        tides, stacks = {}, {}
        for what, volume in (("small", small), ("big", big)):
            tide = tides[what] = engine.tide(f"b8{what}")
            stacks[what] = [
                engine.service(f"b8{what}{n}", [volume], {f"salvage.tide.{tide}": f"g:{volume}"})
                for n in range(3)
            ]
        config = write_config(
            engine.tmp / "b8.toml", engine.tmp, {t: 1 for t in tides.values()}, image
        )
        text = config.read_text()
        for tide in tides.values():
            text = text.replace(f"[tides.{tide}]\n", f'[tides.{tide}]\nstaging = "always"\n')
        config.write_text(text)

        def down(containers: List[str], action) -> float:
            def once() -> float:
                since = time.time()
                action()
                return max(engine.events.downtime(c, since) for c in containers)

            seconds = retried(once)
            shutil.rmtree(engine.tmp / "backups", ignore_errors=True)
            return seconds

        def salvage(what: str) -> float:
            return down(
                stacks[what], lambda: run_salvage(config, engine.env, "run", "--tide", tides[what])
            )

        def bare() -> float:
            ids = stacks["big"]
            return down(
                ids,
                lambda: [
                    subprocess.run(
                        ["docker", verb, *ids],
                        env=engine.env,
                        check=True,
                        stdout=subprocess.DEVNULL,
                    )
                    for verb in ("stop", "start")
                ],
            )

        variants = {"big": lambda: salvage("big"), "small": lambda: salvage("small"), "bare": bare}
        figures = interleaved(rounds, variants)
        return [
            ratio(
                "B8",
                "size independence (XFS)",
                B8_SIZE_BAR,
                ("staged, 1 GB volume", figures["big"]),
                ("staged, 10 MB volume", figures["small"]),
            ),
            ratio(
                "B8",
                "staged vs bare stop/start (XFS)",
                B8_BARE_BAR,
                ("staged, 1 GB volume", figures["big"]),
                ("docker stop a b c; docker start a b c", figures["bare"]),
            ),
        ]
    finally:
        engine.cleanup()
