"""B3 and B5 on a host at scale: 300 containers and 600 volumes in 40 compose projects,
made with the API directly and labelled as docker compose labels them.

Container i belongs to project i*40//300 and mounts two volumes of its own; every third
one carries `salvage.tide.<tide>` for both (200 volumes, a third); every other one runs.
"""

from __future__ import annotations

import hashlib
import re
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Dict, List

from benchmarks.engine import TAR_CRANE, Engine
from benchmarks.measure import (
    Result,
    interleaved,
    median,
    peak_rss,
    ratio,
    retried,
    run_salvage,
    salvage_command,
    source_env,
    spread,
    timed,
    write_config,
)
from benchmarks.proxy import CountingProxy

CONTAINERS, VOLUMES_EACH, PROJECTS, SMALL = 300, 2, 40, 30
B3_BAR, B3_REQUESTS_BAR, B5_BAR = 2.0, 1.0, 80.0
ROUNDS = 7
# The calls salvage plan needs, connected as salvage connects (DOCKER_HOST).
BARE_LISTS = (
    "import docker; api = docker.APIClient(version='auto', **docker.utils.kwargs_from_env());"
    " api.containers(all=True); api.volumes()"
)


class Stack:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.tide, self.small = engine.tide("b3"), engine.tide("b5")
        self.made = 0

    @staticmethod
    def key(i: int) -> str:
        """Container i's project, short: p00 to p39."""
        return f"p{i * PROJECTS // CONTAINERS:02d}"

    def project(self, i: int) -> str:
        return self.engine.name(self.key(i))

    def grow(self, total: int) -> None:
        """Add containers (and their volumes) up to `total`, four API calls at a time."""
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(self._container, range(self.made, total)))
        self.made = total

    def _container(self, i: int) -> None:
        project, service = self.project(i), f"svc{i}"
        keys = [f"data{VOLUMES_EACH * i + k}" for k in range(VOLUMES_EACH)]
        compose = {"com.docker.compose.project": project, "com.docker.compose.version": "2.20.2"}
        volumes = [
            self.engine.volume(
                f"{self.key(i)}_{key}",
                {**compose, "com.docker.compose.volume": key},
            )
            for key in keys
        ]
        labels = {
            **compose,
            "com.docker.compose.service": service,
            "com.docker.compose.container-number": "1",
            "com.docker.compose.oneoff": "False",
            "com.docker.compose.project.working_dir": f"/srv/{project}",
            "com.docker.compose.project.config_files": f"/srv/{project}/compose.yaml",
            "com.docker.compose.config-hash": hashlib.sha256(service.encode()).hexdigest(),
            "com.docker.compose.image": "sha256:" + "0" * 64,
        }
        if i % PROJECTS and self.project(i - 1) == project:
            labels["com.docker.compose.depends_on"] = f"svc{i - 1}:service_started:false"
        if i % 3 == 0:
            labels[f"salvage.tide.{self.tide}"] = ",".join(keys)
        if i == 0:
            labels[f"salvage.tide.{self.small}"] = ",".join(keys)
        self.engine.service(f"{self.key(i)}-{service}-1", volumes, labels, start=i % 2 == 0)


def b3_b5_scale(engine: Engine, rounds: int = ROUNDS) -> List[Result]:
    stack = Stack(engine)
    config = write_config(
        engine.tmp / "b3.toml", engine.tmp, {stack.tide: 1, stack.small: 1}, TAR_CRANE
    )
    proxy = CountingProxy(engine.host, engine.tmp / "proxy.sock")
    try:
        stack.grow(SMALL)
        run_salvage(config, dict(engine.env, DOCKER_HOST=proxy.host), "plan", "--tide", stack.tide)
        few = proxy.take()
        stack.grow(CONTAINERS)
        run_salvage(config, dict(engine.env, DOCKER_HOST=proxy.host), "plan", "--tide", stack.tide)
        many = proxy.take()
    finally:
        proxy.close()
    results = [
        Result(
            "B3",
            "plan requests",
            len(many) / len(few),
            B3_REQUESTS_BAR,
            "x",
            f"{CONTAINERS} containers: {len(many)} requests ({_kinds(many)})",
            f"{SMALL} containers: {len(few)} requests",
        )
    ]

    env = source_env(engine.env)
    plan = salvage_command("-c", str(config), "plan", "--tide", stack.tide)
    figures = interleaved(
        rounds,
        {
            "plan": lambda: timed(plan, env),
            "lists": lambda: timed([sys.executable, "-c", BARE_LISTS], env),
        },
    )
    results.append(
        ratio(
            "B3",
            "plan wall time",
            B3_BAR,
            ("salvage plan", figures["plan"]),
            ("docker-py lists in a script", figures["lists"]),
        )
    )
    results += _b5_memory(config, stack, env)
    return results


def _b5_memory(config: Path, stack: Stack, env: dict, runs: int = 3) -> List[Result]:
    def weigh(*args: str) -> float:
        mb, code, out = peak_rss(salvage_command("-c", str(config), *args), env)
        if code != 0:
            raise RuntimeError(f"salvage {' '.join(args)} exited {code}: {out[-2000:]}")
        return mb

    floor = peak_rss([sys.executable, "-c", "import docker, click"], env)[0]
    plan = [weigh("plan", "--tide", stack.tide) for _ in range(runs)]
    run = [retried(lambda: weigh("run", "--tide", stack.small)) for _ in range(runs)]
    context = f"python3 -c 'import docker, click': {floor:.1f} MB"
    return [
        Result(
            "B5",
            "peak RSS, plan",
            median(plan),
            B5_BAR,
            " MB",
            f"salvage plan, the whole stack's tide (200 volumes): {spread(plan, 'MB')}",
            context,
        ),
        Result(
            "B5",
            "peak RSS, run",
            median(run),
            B5_BAR,
            " MB",
            f"salvage run over the stack, a tide of 2 volumes: {spread(run, 'MB')}",
            context,
        ),
    ]


def _kinds(requests: List[str]) -> str:
    """The requests by kind (a container's id as {id}), with their counts."""
    kinds: Dict[str, int] = {}
    for request in requests:
        kind = re.sub(r"/(containers|volumes)/[0-9a-f]{12,64}(?=[/?]|$)", r"/\1/{id}", request)
        kinds[kind] = kinds.get(kind, 0) + 1
    return ", ".join(f"{n} x {kind}" if n > 1 else kind for kind, n in kinds.items())
