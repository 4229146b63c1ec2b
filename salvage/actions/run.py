"""`salvage run`: back up the volumes of a tide, one group after another.

For each group: run the pre-commands, put the containers into their safe states (in stop
order), run one crane per volume (up to max_concurrent at once), then, whatever happened,
bring every changed container back (in reverse order) and run the post-commands.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Iterable, List, Optional

import requests
from docker.errors import DockerException, NotFound

from salvage import labels, restoring, states
from salvage.actions.recover import recover
from salvage.actions.snapshots import mark_inconsistent
from salvage.config import Config
from salvage.engine import containers
from salvage.engine.client import Engine, EngineError, describe
from salvage.engine.cranes import CraneTimeout, check_secrets, ensure_image
from salvage.engine.discovery import discover
from salvage.invoke import Call
from salvage.model import Problem
from salvage.observers import Observer, Observers, Veto
from salvage.planning import Group, Plan, plan_tide
from salvage.record import Record
from salvage.results import TideResult, VolumeResult

log = logging.getLogger("salvage")


class _Aborted(Exception):
    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem


class TideRun:
    def __init__(
        self,
        engine: Engine,
        config: Config,
        tide: str,
        observers: Iterable[Observer] = (),
        trigger: str = "manual",
    ) -> None:
        self.engine = engine
        self.config = config
        self.tide = config.tides[tide]
        self.crane = config.crane_of(self.tide)
        self.call = Call.new(config, self.tide)
        self.run_id = self.call.run_id
        self.observers = Observers(observers)
        self.result = TideResult(tide, run_id=self.run_id, trigger=trigger)
        self._aborting = threading.Event()
        self.record = Record(config.state_directory)

    def abort(self, reason: str) -> None:
        """Cut the run short (a signal, a shutdown): kill its running cranes and start no
        more. Each group then unwinds as after any failure: its containers are restored.
        Safe to call from a signal handler or another thread."""
        if self._aborting.is_set():
            return
        self.result.interrupted = reason
        self._aborting.set()
        log.warning("tide %s: interrupted (%s): stopping the cranes", self.tide.name, reason)
        threading.Thread(target=self._kill_cranes, name="abort", daemon=True).start()

    def _kill_cranes(self) -> None:
        api = self.engine.unbounded()
        try:
            for crane in api.containers(filters={"label": f"{labels.RUN}={self.run_id}"}):
                try:
                    api.kill(crane["Id"])
                except DockerException:
                    pass  # already gone
        except DockerException as error:
            log.error("tide %s: cannot stop its cranes: %s", self.tide.name, describe(error))
        finally:
            api.close()

    def _check_aborted(self, where: str) -> None:
        if self._aborting.is_set():
            raise _Aborted(Problem(where, f"interrupted ({self.result.interrupted})"))

    def run(self) -> TideResult:
        self.result.started = time.time()
        plan = plan_tide(discover(self.engine), self.config, self.tide.name)
        self.observers.tide_started(self, plan)
        for problem in plan.problems:
            log.error("%s", problem)
        self.result.problems += plan.problems
        if not plan.groups:
            log.info(
                "tide %s: no volume is labelled salvage.tide.%s", self.tide.name, self.tide.name
            )
        else:
            self._run_groups(plan)
        self.result.ended = time.time()
        log.info("%s", self.result.summary())
        self.observers.tide_done(self, self.result)
        return self.result

    def _run_groups(self, plan: Plan) -> None:
        try:
            check_secrets(self.crane)
            ensure_image(self.engine, self.crane)
            # Once, before any crane backs up: cranes at once never race to set up a target.
            volumes = [volume for group in plan.groups for volume in group.volumes]
            failed = self._tide_action("init", volumes)
            if failed:
                raise EngineError(failed)
        except EngineError as error:
            log.error("%s", error)
            for group in plan.groups:
                self.result.volumes += self._fail(group, f"not backed up: {error}")
            return
        for number, group in enumerate(plan.groups, 1):
            if self._aborting.is_set():
                self.result.volumes += self._fail(
                    group, f"not backed up: interrupted ({self.result.interrupted})"
                )
                continue
            log.info(
                "group %d/%d %s: volumes %s", number, len(plan.groups), group.name,
                ", ".join(group.volumes),
            )  # fmt: skip
            self.observers.group_started(self, number, len(plan.groups), group)
            results = self._run_group(group)
            self.result.volumes += results
            for result in results:
                self.observers.volume_done(self, result)
        self._retention()

    def _retention(self) -> None:
        """Once per tide, after every group, containers up: a failed retention is the
        tide's error, never a failure of a volume that was saved."""
        saved = [volume.volume for volume in self.result.volumes if volume.ok]
        if not saved or self._aborting.is_set():
            return
        failed = self._tide_action("retention", saved)
        if failed:
            problem = Problem(f"tide {self.tide.name}", f"retention failed: {failed}")
            log.error("%s", problem)
            self.result.errors.append(problem)

    def _tide_action(self, action: str, volumes: List[str]) -> Optional[str]:
        return self.call.tide_action(
            self.engine, action, volumes, self._aborting,
            starting=lambda: self.observers.crane_action(self, action),
        )  # fmt: skip

    def _fail(self, group: Group, message: str) -> List[VolumeResult]:
        failed = []
        for volume in group.volumes:
            log.error("volume %s: %s", volume, message)
            failed.append(self._volume(volume, group, False, message))
        return failed

    def _volume(self, volume: str, group: Group, ok: bool, message: str = "", **kw) -> VolumeResult:
        return VolumeResult(volume, ok, message, group=group.name, crane=self.crane.name, **kw)

    def _run_group(self, group: Group) -> List[VolumeResult]:
        if group.problems:
            for problem in group.problems:
                log.error("%s", problem)
            self.result.problems += group.problems
            return self._fail(group, f"not backed up: {group.problems[0]}")
        timeout = self.tide.command_timeout
        pre_done, posts, changes, results = [], {}, [], []
        running, inconsistent = [], []
        down_since: Optional[float] = None
        aborted: Optional[Problem] = None
        try:
            # Decide on each container's state as it is now, not as it was when planned.
            now = {
                s.container.id: containers.current(self.engine, s.container.id) for s in group.steps
            }
            running = [s for s in group.steps if now[s.container.id].state == "running"]
            for step in running:
                self._check_aborted(f"group {group.name}")
                if step.settings.pre:
                    self._record_post(step, posts)
                    log.info("container %s: running pre-command", step.container.name)
                    problem = states.run_command(
                        self.engine, step.container, step.settings, "pre", timeout
                    )
                    if problem:
                        raise _Aborted(problem)
                    pre_done.append(step)
            for step in running:
                self._check_aborted(f"group {group.name}")
                self._record_post(step, posts)
                if step.settings.action in states.UNDO:
                    if down_since is None:
                        self.observers.containers_leaving(self, group)
                        down_since = time.monotonic()
                    log.info("container %s: %s", step.container.name, step.settings.action)
                    changes.append(
                        states.enter(
                            self.engine, self.record, step.container, step.settings.action,
                            now[step.container.id].stop_timeout, self.run_id, self.tide.name,
                        )
                    )  # fmt: skip
            results = self._run_cranes(group)
            disturbed = self._disturbed(changes)
            if disturbed:
                inconsistent = [r.volume for r in results if r.ok]
                raise _Aborted(
                    Problem(f"group {group.name}", f"{disturbed}: backup not consistent")
                )
        except _Aborted as error:
            aborted = error.problem
        except Veto as error:
            aborted = Problem(f"group {group.name}", str(error))
        except (DockerException, EngineError, requests.exceptions.RequestException) as error:
            aborted = Problem(f"group {group.name}", f"safe state failed: {describe(error)}")
        finally:
            self.result.errors += states.restore_all(self.engine, self.record, changes)
            downtime = time.monotonic() - down_since if down_since is not None else 0.0
            if down_since is not None:
                self.observers.containers_back(self, group)
                self.result.downtime += downtime
                log.info("group %s: containers were down for %.2f s", group.name, downtime)
            self._run_posts(reversed(pre_done if aborted else running), posts, timeout)
        if aborted:
            log.error("%s", aborted)
            results = self._fail(group, f"not backed up: {aborted}")
        # Their snapshots exist but cannot be trusted: never a restore's default.
        mark_inconsistent(self.engine, self.call, inconsistent, str(aborted))
        for result in results:
            result.downtime = downtime
        self.observers.group_done(self, group, downtime)
        return results

    def _record_post(self, step, posts: dict) -> None:
        """A post-command is due from the moment its container is touched."""
        if step.settings.post and step.container.id not in posts:
            entry = states.post_entry(step.container, step.settings, self.run_id, self.tide.name)
            self.record.add(entry)
            posts[step.container.id] = entry

    def _run_posts(self, steps, posts: dict, timeout: float) -> None:
        for step in steps:
            if step.settings.post:
                log.info("container %s: running post-command", step.container.name)
                problem = states.run_command(
                    self.engine, step.container, step.settings, "post", timeout
                )
                if problem:
                    log.error("%s", problem)
                    self.result.errors.append(problem)
        # Due posts not run here (their pre failed, or the group was cut short before them)
        # are not due any more either.
        for entry in posts.values():
            self.record.remove(entry)

    def _disturbed(self, changes) -> Optional[str]:
        """Someone started or removed a container while its volumes were being backed up."""
        for entry in changes:
            why = states.disturbed(self.engine, entry)
            if why:
                return f'container "{entry.name}" {why}'
        return None

    def _run_cranes(self, group: Group) -> List[VolumeResult]:
        workers = min(self.tide.max_concurrent, self.crane.max_concurrent, len(group.volumes))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(lambda volume: self._run_crane(group, volume), group.volumes))

    def _run_crane(self, group: Group, volume: str) -> VolumeResult:
        started, wall = time.monotonic(), time.time()
        crane = self.crane
        code, error = None, None
        try:
            self._check_aborted(f"volume {volume}")  # before saying it starts: it may not
            unfinished = restoring.of(self.record.entries(), volume)
            if unfinished:  # its backup could rotate away the snapshot being restored
                error = f"half restored: not backed up until `{restoring.command(unfinished)}`"
            else:
                self.observers.volume_started(self, volume)
                log.info("volume %s: backing up (crane %s)", volume, crane.name)
                code, _ = self.call.run(self.engine, "backup", volume, cancelled=self._aborting)
                if code != 0:
                    error = f'crane "{crane.name}" exited with {code}'
        except _Aborted:
            error = "not started"
        except NotFound:
            # Mounting it would make Docker create a new, empty volume of that name.
            error = "the volume no longer exists"
        except CraneTimeout as timeout:
            error = f'crane "{crane.name}" {timeout}'
        except Exception as failure:  # one volume's failure never stops the group's restore
            error = f'crane "{crane.name}": {describe(failure)}'
        seconds = time.monotonic() - started
        if error and self._aborting.is_set():
            error = f"interrupted ({self.result.interrupted}): {error}"
        if error:
            log.error("volume %s: failed: %s", volume, error)
        else:
            log.info("volume %s: backed up in %.2f s", volume, seconds)
        return self._volume(
            volume, group, error is None, error or "", exit_code=code, seconds=seconds,
            started=wall,
        )  # fmt: skip


def run(
    engine: Engine, config: Config, tides: List[str], observers: Iterable[Observer] = ()
) -> int:
    """Run the tides one after another; the worst exit code.

    SIGTERM and SIGINT abort the running tide (its cranes are killed, its containers
    restored) and start no further tide.
    """
    observers = list(observers)
    current: List[TideRun] = []
    stopped: List[str] = []

    def on_signal(signum, _frame) -> None:
        stopped.append(signal.Signals(signum).name)
        for tide_run in current:
            tide_run.abort(stopped[0])

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        # A run that died before this one may have left containers down.
        codes = [1 if recover(engine, config) else 0]
        for tide in tides:
            if stopped:
                log.error("tide %s: not run (%s)", tide, stopped[0])
                codes.append(1)
                continue
            # systemd sets INVOCATION_ID for every unit it starts (a timer's, or by hand).
            trigger = "service" if os.environ.get("INVOCATION_ID") else "manual"
            tide_run = TideRun(engine, config, tide, observers, trigger)
            current[:] = [tide_run]
            codes.append(tide_run.run().exit_code)
        return max(codes)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
