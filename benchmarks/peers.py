"""B9: salvage against what users pick instead: backup-docker-to-local (PyPI, its command is
`baudolo`), on B7's workload: three running containers over two 100 MB volumes of random
bytes (one container uses both).

What baudolo does (7.1.1, read from its source): on the host, for each volume `docker
volume ls` lists, an `rsync -aHAX` from the volume's mountpoint with its containers up, then
`docker stop` of the running containers that use the volume, a second pass with
`rsync --checksum`, and `docker start`. That is its documented consistent way (containers
stopped for the second pass), and the one measured: it stops per volume, so a container over
two volumes is down twice. A container's downtime here is therefore the sum of its die to
start windows, on both sides alike, and a round's figure the longest of the three.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import List

from benchmarks.engine import BUSYBOX, MB, ROOT, Engine
from benchmarks.measure import Result, interleaved, ratio, retried, run_salvage, write_config
from benchmarks.staging import build_gnu_tar

B9_BAR, B9_ROUNDS = 0.7, 5
PEER = "backup-docker-to-local==7.1.1"


def _run(command: List[str], env: dict) -> None:
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command)} exited {done.returncode}: {(done.stderr or done.stdout)[-2000:]}"
        )


def install_peer() -> Path:
    """baudolo from PyPI in a venv of its own under /tmp, made by the system's python3 (never
    installed into a system Python); kept between runs, as pandas makes it a 30 s install."""
    if not shutil.which("rsync"):
        raise RuntimeError("rsync is not installed (baudolo runs it on the host): make deps")
    venv = Path(tempfile.gettempdir()) / f"salvage-bench-{PEER.replace('==', '-')}"
    if not (venv / ".installed").exists():
        python = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else "python3"
        shutil.rmtree(venv, ignore_errors=True)
        print(f"B9: installing {PEER} into {venv}", flush=True)
        _run([python, "-m", "venv", str(venv)], {})
        _run(
            [
                str(venv / "bin/python"),
                "-m",
                "pip",
                "install",
                "-q",
                "--disable-pip-version-check",
                PEER,
            ],
            {},
        )
        (venv / ".installed").touch()
    return venv / "bin/baudolo"


def _longest_down(engine: Engine, containers: List[str], since: float) -> float:
    """The longest, over the containers, of the sum of each one's die to start windows after
    `since`. A marker container made now is seen in the event stream only after every event
    before it, so no window is missed for want of waiting."""
    marker = engine.api.create_container(BUSYBOX, ["true"], labels=engine.labels)["Id"]
    engine.api.remove_container(marker, force=True)
    deadline = time.monotonic() + 10
    while not any(e.get("id") == marker for e in list(engine.events.seen)):
        if time.monotonic() > deadline:
            raise RuntimeError("the event stream did not catch up")
        time.sleep(0.05)
    totals = []
    for container in containers:
        total, down = 0.0, None
        mine = [e for e in list(engine.events.seen) if e.get("id") == container]
        for event in sorted(mine, key=lambda e: e["timeNano"]):
            if event["timeNano"] < since * 1e9:
                continue
            if event["Action"] == "die" and down is None:
                down = event["timeNano"]
            elif event["Action"] == "start" and down is not None:
                total, down = total + (event["timeNano"] - down) / 1e9, None
        if down is not None or not total:
            raise RuntimeError(f"container {container[:12]} was not stopped and started again")
        totals.append(total)
    return max(totals)


def b9_peers(engine: Engine, rounds: int = B9_ROUNDS) -> List[Result]:
    baudolo = install_peer()
    image = build_gnu_tar(engine)
    volumes = [engine.volume(f"b9-{i}") for i in range(2)]
    engine.fill(volumes)
    tide = engine.tide("b9")
    refs = ",".join(f"g:{v}" for v in volumes)
    containers = [
        engine.service("b9a", volumes[:1], {}),
        engine.service("b9b", volumes[1:], {}),
        engine.service("b9c", volumes, {f"salvage.tide.{tide}": refs}),
    ]
    config = write_config(engine.tmp / "b9.toml", engine.tmp, {tide: 1}, image)
    config.write_text(
        config.read_text().replace(f"[tides.{tide}]\n", f'[tides.{tide}]\nstaging = "always"\n')
    )
    compose_dir, target = engine.tmp / "b9-compose", engine.tmp / "b9-baudolo"
    compose_dir.mkdir()  # baudolo's required --compose-dir: empty, no compose project to restart

    def peer() -> None:
        # baudolo backs up every volume of the engine unless told otherwise.
        others = sorted({v["Name"] for v in engine.api.volumes()["Volumes"] or ()} - set(volumes))
        command = [
            str(baudolo),
            "--only-files",
            "--compose-dir",
            str(compose_dir),
            "--backups-dir",
            str(target),
            "--repo-name",
            "bench",
        ]
        _run(command + (["--volumes-no-backup-required", *others] if others else []), engine.env)
        for volume in volumes:  # <machine id>/<repo>/<generation>/<volume>/files/
            copies = list(target.glob(f"*/bench/*/{volume}/files/data.bin"))
            if [c.stat().st_size for c in copies] != [100 * MB]:
                raise RuntimeError(f"baudolo left no full copy of {volume}: {copies}")

    def down(action) -> float:
        def once() -> float:
            since = time.time()
            action()
            return _longest_down(engine, containers, since)

        seconds = retried(once)
        for done in (engine.tmp / "backups", target):  # each round a first, full backup
            shutil.rmtree(done, ignore_errors=True)
        return seconds

    engine.settle()
    figures = interleaved(
        rounds,
        {
            "salvage": lambda: down(lambda: run_salvage(config, engine.env, "run", "--tide", tide)),
            "peer": lambda: down(peer),
        },
    )
    return [
        ratio(
            "B9",
            "downtime vs backup-docker-to-local",
            B9_BAR,
            ("salvage run, staging = always", figures["salvage"]),
            (f"baudolo ({PEER}) --only-files", figures["peer"]),
        )
    ]
