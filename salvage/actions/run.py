"""`salvage run`: back up the volumes of a tide, one group after another.

For each group: run the pre-commands, put the containers into their safe states (in stop
order), run one crane per volume (up to max_concurrent at once), then, whatever happened,
bring every changed container back (in reverse order) and run the post-commands.
"""

from __future__ import annotations

import logging
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import List, Optional

from docker.errors import DockerException, NotFound

from salvage import __version__, labels, states
from salvage.config import Config
from salvage.engine import containers
from salvage.engine.client import Engine, EngineError, describe
from salvage.engine.cranes import CRANE_API, CraneTimeout, ensure_image, run_crane
from salvage.engine.discovery import discover
from salvage.model import Problem
from salvage.planning import Group, Plan, plan_tide

log = logging.getLogger("salvage")


@dataclass
class VolumeResult:
    volume: str
    ok: bool
    message: str = ""
    exit_code: Optional[int] = None
    seconds: float = 0.0


@dataclass
class TideResult:
    tide: str
    volumes: List[VolumeResult] = field(default_factory=list)
    problems: List[Problem] = field(default_factory=list)  # in labels: exit 2
    errors: List[Problem] = field(default_factory=list)  # while running: exit 1
    downtime: float = 0.0
    seconds: float = 0.0

    @property
    def failed(self) -> List[VolumeResult]:
        return [v for v in self.volumes if not v.ok]

    @property
    def exit_code(self) -> int:
        if self.problems:
            return 2
        return 1 if self.errors or self.failed else 0

    def summary(self) -> str:
        ok = len(self.volumes) - len(self.failed)
        return (
            f"tide {self.tide}: {ok} volume{'s' * (ok != 1)} backed up, {len(self.failed)} failed,"
            f" {len(self.problems)} label problem{'s' * (len(self.problems) != 1)};"
            f" containers down {self.downtime:.1f} s in all; took {self.seconds:.1f} s"
        )


class _Aborted(Exception):
    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem


class TideRun:
    def __init__(self, engine: Engine, config: Config, tide: str) -> None:
        self.engine = engine
        self.config = config
        self.tide = config.tides[tide]
        self.crane = config.crane_of(self.tide)
        self.run_id = uuid.uuid4().hex
        self.timestamp = int(time.time())
        self.result = TideResult(tide)

    def run(self) -> TideResult:
        started = time.monotonic()
        plan = plan_tide(discover(self.engine), self.config, self.tide.name)
        for problem in plan.problems:
            log.error("%s", problem)
        self.result.problems += plan.problems
        if not plan.groups:
            log.info(
                "tide %s: no volume is labelled salvage.tide.%s", self.tide.name, self.tide.name
            )
        else:
            self._run_groups(plan)
        self.result.seconds = time.monotonic() - started
        log.info("%s", self.result.summary())
        return self.result

    def _run_groups(self, plan: Plan) -> None:
        try:
            ensure_image(self.engine, self.crane)
        except EngineError as error:
            log.error("%s", error)
            for group in plan.groups:
                self._fail(group, f"not backed up: {error}")
            return
        for number, group in enumerate(plan.groups, 1):
            log.info(
                "group %d/%d %s: volumes %s",
                number,
                len(plan.groups),
                group.name,
                ", ".join(group.volumes),
            )
            self._run_group(group)

    def _fail(self, group: Group, message: str) -> None:
        for volume in group.volumes:
            log.error("volume %s: %s", volume, message)
            self.result.volumes.append(VolumeResult(volume, False, message))

    def _run_group(self, group: Group) -> None:
        if group.problems:
            for problem in group.problems:
                log.error("%s", problem)
            self.result.problems += group.problems
            self._fail(group, f"not backed up: {group.problems[0]}")
            return
        timeout = self.tide.command_timeout
        # Decide on each container's state as it is now, not as it was when planned.
        now = {s.container.id: containers.current(self.engine, s.container.id) for s in group.steps}
        running = [s for s in group.steps if now[s.container.id].state == "running"]
        pre_done, changes = [], []
        down_since: Optional[float] = None
        aborted: Optional[Problem] = None
        try:
            for step in running:
                if step.settings.pre:
                    log.info("container %s: running pre-command", step.container.name)
                    problem = states.run_command(
                        self.engine, step.container, step.settings, "pre", timeout
                    )
                    if problem:
                        raise _Aborted(problem)
                    pre_done.append(step)
            for step in running:
                if step.settings.action in states.UNDO:
                    log.info("container %s: %s", step.container.name, step.settings.action)
                    down_since = down_since or time.monotonic()
                    changes.append(
                        states.enter(
                            self.engine,
                            step.container,
                            step.settings.action,
                            now[step.container.id].stop_timeout,
                        )
                    )
            self._run_cranes(group)
        except _Aborted as error:
            aborted = error.problem
        except (DockerException, EngineError) as error:
            aborted = Problem(f"group {group.name}", f"safe state failed: {describe(error)}")
        finally:
            for change in reversed(changes):
                verb = "start" if change.action == "stop" else "unpause"
                try:
                    log.info("container %s: %s", change.container.name, verb)
                    states.leave(self.engine, change)
                except Exception as error:  # keep restoring the others
                    problem = Problem(
                        f'container "{change.container.name}"',
                        f"could not {verb}: {describe(error)}",
                    )
                    log.error("%s", problem)
                    self.result.errors.append(problem)
            if down_since is not None:
                downtime = time.monotonic() - down_since
                self.result.downtime += downtime
                log.info("group %s: containers were down for %.2f s", group.name, downtime)
            for step in reversed(pre_done if aborted else running):
                if step.settings.post:
                    log.info("container %s: running post-command", step.container.name)
                    problem = states.run_command(
                        self.engine, step.container, step.settings, "post", timeout
                    )
                    if problem:
                        log.error("%s", problem)
                        self.result.errors.append(problem)
        if aborted:
            log.error("%s", aborted)
            self._fail(group, f"not backed up: {aborted}")

    def _run_cranes(self, group: Group) -> None:
        workers = min(self.tide.max_concurrent, self.crane.max_concurrent, len(group.volumes))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            self.result.volumes += list(pool.map(self._run_crane, group.volumes))

    def _run_crane(self, volume: str) -> VolumeResult:
        started = time.monotonic()
        crane = self.crane
        log.info("volume %s: backing up (crane %s)", volume, crane.name)
        try:
            try:
                info = self.engine.api.inspect_volume(volume)
            except NotFound:
                # Mounting it would make Docker create a new, empty volume of that name.
                return self._volume_done(volume, started, "the volume no longer exists")
            code = run_crane(
                self.engine,
                crane,
                volume=volume,
                env=self._env(volume),
                labels=self._labels(volume),
                meta=self._meta(info),
                run_id=self.run_id,
                timeout=self.tide.crane_timeout,
                on_line=lambda line: log.info("%s: %s", volume, line),
            )
        except CraneTimeout as error:
            return self._volume_done(volume, started, f'crane "{crane.name}" {error}')
        except Exception as error:  # one volume's failure never stops the group's restore
            return self._volume_done(volume, started, f'crane "{crane.name}": {describe(error)}')
        if code != 0:
            return self._volume_done(
                volume, started, f'crane "{crane.name}" exited with {code}', code
            )
        return self._volume_done(volume, started, None, code)

    def _env(self, volume: str) -> dict:
        env = dict(self.crane.env)
        env.update(
            SALVAGE_CRANE_API=CRANE_API,
            SALVAGE_ACTION="backup",
            SALVAGE_MACHINE_NAME=self.config.machine,
            SALVAGE_CRANE_NAME=self.crane.name,
            SALVAGE_TIDE_NAME=self.tide.name,
            SALVAGE_VOLUME_NAME=volume,
            SALVAGE_TIDE_TIMESTAMP=str(self.timestamp),
        )
        return env

    def _labels(self, volume: str) -> dict:
        return {
            labels.CRANE: self.crane.name,
            labels.CRANE_TIDE: self.tide.name,
            labels.CRANE_VOLUME: volume,
            labels.RUN: self.run_id,
        }

    def _volume_done(
        self, volume: str, started: float, error: Optional[str], code: Optional[int] = None
    ) -> VolumeResult:
        seconds = time.monotonic() - started
        if error:
            log.error("volume %s: failed: %s", volume, error)
            return VolumeResult(volume, False, error, code, seconds)
        log.info("volume %s: backed up in %.2f s", volume, seconds)
        return VolumeResult(volume, True, "", code, seconds)

    def _meta(self, info: dict) -> dict:
        return {
            "salvage_version": __version__,
            "crane_api": CRANE_API,
            "machine": self.config.machine,
            "tide": self.tide.name,
            "crane": self.crane.name,
            "tide_timestamp": self.timestamp,
            "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "volume": {
                "name": info["Name"],
                "driver": info.get("Driver"),
                "labels": info.get("Labels") or {},
                "options": info.get("Options") or {},
                "scope": info.get("Scope"),
                "created": info.get("CreatedAt"),
            },
        }


def run(engine: Engine, config: Config, tides: List[str]) -> int:
    """Run the tides one after another; the worst exit code."""
    return max(TideRun(engine, config, tide).run().exit_code for tide in tides)
