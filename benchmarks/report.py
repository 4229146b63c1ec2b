"""The report: a table on stdout and docs/performance.md, with the machine and engine."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import List

import docker

from benchmarks.engine import ROOT, Engine
from benchmarks.measure import Result

HEADER = """# Performance

Written by `make bench` (`python -m benchmarks`); do not edit by hand. Every figure is a
ratio against a baseline measured in the same run, on the same engine, as the median of
several runs (interleaved, so that a busy moment falls on both sides alike); memory is
absolute. How each is measured: [benchmarks/](../benchmarks/) and the notes below.
"""

NOTES = """## What is measured

Images: a busybox base from the host's static busybox (scripts/busybox-image) and the tar
crane (salvage/crane/images/tar) built on it, tagged salvage-bench/*. The 100 MB volumes hold random
bytes from /dev/urandom (incompressible, like media or encrypted data). Every container
and volume is labelled `salvage-bench.run` and removed at the end.

- **B1** one running container, one 100 MB volume, the tar crane: the container's
  downtime (Docker's `die` to `start` event) under `salvage run`, against a shell script
  doing `docker stop`, `docker run --rm` of the same crane with the same env and mounts
  (the volume read-only, a meta.json, the target directory), `docker start`.
- **B2** one running container with four such volumes: downtime with `max_concurrent = 4`
  (tide and crane) against `max_concurrent = 1`.
- **B3** 300 containers (every other one running) and 600 volumes in 40 compose projects,
  made through the API with compose's labels; a third of the volumes labelled for one tide.
  Wall time of `salvage plan` against a script making the two list calls with docker-py
  (both are new Python processes); and the Docker API requests `salvage plan` makes,
  counted by a proxy on a unix socket, at 30 and at 300 containers.
- **B4** wall time of `python3 -m salvage --version` and `--help` against
  `python3 -c "import click"`.
- **B5** peak RSS (the kernel's ru_maxrss) of `salvage plan` over the B3 stack's tide, and
  of a `salvage run` over the B3 stack of a tide whose two (empty) volumes keep it short.
- **B6** the tar crane's backup of the B1 volume against `tar -czf` of the same data
  (volume and meta) in the crane's image, each timed from container start to exit.
- **B7** three running containers over two 100 MB volumes (one group: one container
  uses both), the tar crane on a Debian base (debootstrapped, as the tests'; GNU cp): the
  group's downtime (the longest of its containers', die to start) with `staging =
  "always"` (each volume copied to a stage on the engine's data root, the crane backing up
  the stage with the containers up) against `staging = "never"`. The data root is ext4
  here (no reflinks) and the image has rsync: the stage is a live copy made with the
  containers up, and while they are down only what changed since is copied (README,
  Staging). The rounds start once the volumes' data is older than that copy's margin (45 s
  after it was written; files changed within it are copied again while the containers
  are down), as most of a volume is at a nightly backup.
- **B8** a dockerd of the benchmark's own whose data root is XFS (reflinks) on a 4 GB
  loop-mounted file (xfsprogs); three running containers over one volume, the B7 crane,
  `staging = "always"`: the group's downtime for a 1 GB volume against a 10 MB one, and
  against a bare `docker stop a b c; docker start a b c` of the 1 GB volume's containers.
- **B10** three containers of one group (one volume), each taking 2 s to stop (a shell
  trapping SIGTERM), no depends_on between them: salvage's stop phase against one
  `docker stop a b c` (the docker CLI stops them at once), each from the first `kill`
  event of the three to the last `die`.

B3's request count grows with the containers a tide could stop since salvage learns which
of them were started with `--rm` (AutoRemove, never stopped: README): Docker's list of
containers does not say it, so `plan` inspects each live container a tide could stop (one
request each; 150 in B3's stack, where every running container is one). The bar was set
before that check; it is missed for it, and the wall time with it.

On an engine shared with other salvage runs (tests), their recovery removes every crane
it finds, ours included; a round that fails so is run again (at most three times), and the
output says so.

**B9** B7's workload (three running containers over two 100 MB volumes, one of them using
both) under `salvage run` with `staging = "always"` and a tar crane on the tests'
debootstrapped Debian image (GNU cp), against backup-docker-to-local 7.1.1 (`baudolo
--only-files`), installed from PyPI into a venv under /tmp made by the system's python3 and
kept between runs. baudolo needs no image: it runs rsync on the host (root, a local
engine) on each volume's mountpoint under the data root. Per volume it copies live, then
`docker stop`s the running containers using that volume, copies again with
`rsync --checksum`, and `docker start`s them: its documented consistent way
(`--images-no-stop-required` skips the stop and the consistency; `--snapshot btrfs|zfs`
copies from a file-system snapshot with nothing stopped, on such a data root only, not
measured). Stopping per volume, it stops the container over both volumes twice and copies
its two volumes at different moments, not from one state of it; salvage stops the group
once. A container's downtime is the sum of its die to start windows on both sides, a
round's figure the longest of the three. Every round starts from an empty backup
directory (the stopped pass reads every byte either way). salvage's stages are made as in
B7 (a live copy, then what changed since, with the containers down), from data as old.
Both sides copy the volumes live first, then again with the containers down; baudolo's
second pass compares every byte (`--checksum`), salvage's trusts ctimes (README,
Staging).
"""


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _memory() -> str:
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        return f"{kb / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        return "unknown memory"


def _commit() -> str:
    try:
        head = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "salvage"],
            capture_output=True,
            text=True,
        ).stdout.strip()
        return head + (" with uncommitted changes in salvage/" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def environment(engine: Engine) -> List[str]:
    info, version = engine.api.info(), engine.api.version()
    where = "a private dockerd started for the run" if engine.private else engine.host
    return [
        f"- machine: {platform.node()}, {_cpu()}, {os.cpu_count()} CPUs, {_memory()},"
        f" {platform.system()} {platform.release()}; load average"
        f" {engine.before['load']:.1f} at the start, {os.getloadavg()[0]:.1f} at the end",
        f"- engine: Docker {version.get('Version')} (API {version.get('ApiVersion')}),"
        f" storage driver {info.get('Driver')}, cgroup {info.get('CgroupVersion', '?')};"
        f" {where}, holding {engine.before['containers']} other containers at the start",
        f"- salvage {_commit()}; Python {platform.python_version()}, docker-py"
        f" {docker.__version__}",
        f"- date: {time.strftime('%Y-%m-%d %H:%M %Z')}",
    ]


def table(results: List[Result]) -> List[str]:
    lines = [
        "| | benchmark | figure | bar | met | measured | baseline |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        figure = "error" if r.error else f"{r.figure:.2f}{r.unit}"
        bar = "" if r.error else f"<= {r.bar:g}{r.unit}"
        met = "yes" if r.met else "**no**"
        measured = f"error: {r.problem}" if r.error else r.measured
        lines.append(
            f"| {r.key} | {r.title} | {figure} | {bar} | {met} | {measured} | {r.baseline} |"
        )
    return lines


def write(engine: Engine, results: List[Result], seconds: float, path: Path) -> None:
    env = environment(engine)
    body = [
        HEADER,
        "## Last run",
        "",
        *env,
        f"- the run took {seconds:.0f} s",
        "",
        *table(results),
        "",
        NOTES,
    ]
    path.write_text("\n".join(body))
    print("\n" + "\n".join(env))
    print("\n".join(table(results)))
    print(
        f"\nwritten to {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}",
        file=sys.stdout,
    )
