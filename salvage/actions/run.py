"""`salvage run`: back up the volumes of a tide, one group after another.

For each group: run the pre-commands, put the containers into their safe states (at once,
but dependents before their dependencies: salvage.core.ordering), run one crane per volume (up
to max_concurrent at once), then, whatever happened, bring every changed container back
(dependencies first) and run the post-commands. With staging (salvage.crane.staging), the
containers are down only while each volume is copied to a stage; the cranes back up the
stages once the containers are back.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from salvage.actions.dump import take as take_dump
from salvage.actions.recover import recover
from salvage.actions.snapshots import mark_inconsistent
from salvage.config import Config
from salvage.core import dumps
from salvage.core.dumps import Dump
from salvage.core.model import LIVE, Problem
from salvage.core.planning import Group, Plan, Step, plan_tide
from salvage.core.results import TideResult, VolumeResult, stored
from salvage.crane import staging
from salvage.crane.invoke import Call
from salvage.engine import containers
from salvage.engine.client import Engine, EngineError, describe
from salvage.engine.cranes import CraneTimeout, check_secrets, ensure_image
from salvage.engine.discovery import discover
from salvage.engine.errors import ENGINE_ERRORS, DockerException, NotFound
from salvage.errors import EXIT_FAILED, EXIT_OK
from salvage.report import shrink
from salvage.report.history import History, HistoryError
from salvage.report.observers import Observer, Observers, RunView, Veto
from salvage.safety import restoring, stage_entries, states
from salvage.safety.downtime import Downtime, Interrupted, signals_unwind, stop_cranes
from salvage.safety.record import Entry, Record, RecordError

log = logging.getLogger("salvage")


@dataclass
class GroupRun:
    """One group's run, handed from phase to phase (enter, while down, leave, the stages'
    cranes): what each found or made, for the next and for the leaving, whatever failed."""

    group: Group
    down: Downtime
    now: Dict[str, containers.Current] = field(default_factory=dict)  # by container id
    live: List[Step] = field(default_factory=list)  # its containers that run (or restart)
    commands: List[Step] = field(default_factory=list)  # those that run: pre- and post-commands
    pre_done: List[Step] = field(default_factory=list)
    leaving: bool = False  # observers were told the containers leave
    stager: Optional[staging.Stager] = None
    staged: Dict[str, staging.Stage] = field(default_factory=dict)
    entered: List[Entry] = field(default_factory=list)  # its stage volumes and stager, recorded
    results: List[VolumeResult] = field(default_factory=list)
    inconsistent: List[str] = field(default_factory=list)
    aborted: Optional[Problem] = None


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
        self.staging = self.tide.staging  # "never" once the crane image proves it cannot
        self.record = Record(config.state_directory)
        self.view = RunView(config, self.tide, self.crane, self.run_id, self.result, self.abort)

    def abort(self, reason: str) -> None:
        """Cut the run short (a signal, a shutdown): kill its running cranes and start no
        more. Each group then unwinds as after any failure: its containers are restored.
        Safe to call from a signal handler or another thread."""
        if self._aborting.is_set():
            return
        self.result.interrupted = reason
        self._aborting.set()
        log.warning("tide %s: interrupted (%s): stopping the cranes", self.tide.name, reason)
        threading.Thread(
            target=stop_cranes, args=(self.engine, self.run_id), name="abort", daemon=True
        ).start()

    def _check_aborted(self, where: str) -> None:
        if self._aborting.is_set():
            raise Interrupted(Problem(where, f"interrupted ({self.result.interrupted})"))

    def run(self) -> TideResult:
        self.result.started = time.time()
        host = discover(self.engine, [self.tide])
        plan = plan_tide(host, self.config, self.tide.name)
        self.call = dataclasses.replace(self.call, binds=plan.binds)
        taken, dump_problems = dumps.tide_dumps(host, self.tide.name)
        self.observers.tide_started(self.view, plan)
        for problem in (*plan.problems, *dump_problems):
            log.error("%s", problem)
        self.result.problems += (*plan.problems, *dump_problems)
        if not plan.groups and not taken:
            log.info(
                "tide %s: no volume is labelled salvage.tide.%s", self.tide.name, self.tide.name
            )
        else:
            self._run_groups(plan, taken)
        self.result.ended = time.time()
        log.info("%s", self.result.summary())
        self.observers.tide_done(self.view, self.result)
        return self.result

    def _run_groups(self, plan: Plan, taken: Sequence[Dump] = ()) -> None:
        try:
            check_secrets(self.crane)
            ensure_image(self.engine, self.crane)
            self._probe_staging()
            # Once, before any crane backs up: cranes at once never race to set up a target.
            volumes = [volume for group in plan.groups for volume in group.volumes]
            failed = self._tide_action("init", [d.name for d in taken] + volumes)
            if failed:
                raise EngineError(failed)
        except EngineError as error:
            log.error("%s", error)
            for dump in taken:
                log.error("dump %s: not taken: %s", dump.name, error)
                self.result.volumes.append(self._dump_result(dump, f"not taken: {error}"))
            for group in plan.groups:
                self.result.volumes += self._fail(group, f"not backed up: {error}")
            return
        # First, with every container as it is: a group may stop a database for its volume.
        for dump in taken:
            result = self._take_dump(dump)
            self.result.volumes.append(result)
            self.observers.volume_done(self.view, result)
        for number, group in enumerate(plan.groups, 1):
            if self._aborting.is_set():
                self.result.volumes += self._fail(
                    group, f"not backed up: interrupted ({self.result.interrupted})"
                )
                continue
            log.info(
                "group %d/%d %s: volumes %s",
                number,
                len(plan.groups),
                group.name,
                ", ".join(group.volumes),
            )
            self.observers.group_started(self.view, number, len(plan.groups), group)
            results = self._run_group(group)
            self.result.volumes += results
            for result in results:
                self.observers.volume_done(self.view, result)
        self._retention()

    def _probe_staging(self) -> None:
        """`auto` with an image that cannot stage: the classic way for the whole tide, said
        once, decided before any container goes down."""
        self.staging = self.tide.staging
        if self.staging != "auto":
            return
        try:
            why = staging.probe(
                self.engine, self.crane.image, self.call.labels(""), 120, self.run_id
            )
        except (*ENGINE_ERRORS, EngineError) as error:
            why = describe(error)
        if why:
            self.staging = "never"
            log.warning(
                "tide %s: not staged (%s): volumes are backed up with their containers down",
                self.tide.name,
                why,
            )

    def _retention(self) -> None:
        """Once per tide, after every group, containers up: a failed retention is the
        tide's error, never a failure of a volume that was saved."""
        saved = [volume.volume for volume in self.result.volumes if volume.ok]
        if not saved or self._aborting.is_set():
            return
        failed = self._tide_action("retention", saved)
        if failed:
            failure = Problem(f"tide {self.tide.name}", f"retention failed: {failed}")
            log.error("%s", failure)
            self.result.errors.append(failure)

    def _tide_action(self, action: str, volumes: List[str]) -> Optional[str]:
        return self.call.tide_action(
            self.engine,
            action,
            volumes,
            self._aborting,
            starting=lambda: self.observers.crane_action(self.view, action),
        )

    def _fail(self, group: Group, message: str) -> List[VolumeResult]:
        failed = []
        for volume in group.volumes:
            log.error("volume %s: %s", volume, message)
            failed.append(self._volume(volume, group, False, message))
        return failed

    def _volume(self, volume: str, group: Group, ok: bool, message: str = "", **kw) -> VolumeResult:
        return VolumeResult(volume, ok, message, group=group.name, crane=self.crane.name, **kw)

    def _dump_result(self, dump: Dump, error: str = "", **kw) -> VolumeResult:
        return VolumeResult(
            dump.name, not error, error, group=dump.name, crane=self.crane.name, **kw
        )

    def _take_dump(self, dump: Dump) -> VolumeResult:
        """A running database's dump, as a volume's backup: its result has the dump's name."""
        started, wall = time.monotonic(), time.time()
        code, report, error = None, None, None
        try:
            self._check_aborted(f"dump {dump.name}")
            self.observers.volume_started(self.view, dump.name)
            log.info(
                "dump %s: dumping container %s (%s; it keeps running; crane %s)",
                dump.name,
                dump.container.name,
                dump.kind,
                self.crane.name,
            )
            code, report, error = take_dump(self.engine, self.call, dump, self._aborting)
            if not error and code != 0:
                error = f'crane "{self.crane.name}" exited with {code}'
        except Interrupted:
            error = "not started"
        except CraneTimeout as timeout:
            error = f'crane "{self.crane.name}" {timeout}'
        except Exception as failure:  # one dump's failure never stops the tide
            error = f'crane "{self.crane.name}": {describe(failure)}'
        seconds = time.monotonic() - started
        if error and self._aborting.is_set():
            error = f"interrupted ({self.result.interrupted}): {error}"
        if error:
            log.error("dump %s: failed: %s", dump.name, error)
        else:
            log.info("dump %s: taken in %.2f s%s", dump.name, seconds, stored(report))
        reported = vars(report) if report and not error else {}
        result = self._dump_result(
            dump,
            error or "",
            exit_code=code,
            seconds=seconds,
            started=wall,
            size=reported.get("bytes_stored"),
            bytes_read=reported.get("bytes_read"),
            files=reported.get("files"),
            snapshot=reported.get("snapshot"),
        )
        result.shrunk = shrink.check(
            self.config.state_directory, self.tide.name, result, self.tide.shrink_alert
        )
        return result

    def _run_group(self, group: Group) -> List[VolumeResult]:
        """The group's phases: enter (pre-commands, its stager ready, containers into their
        safe states), while down (stage copies, the other volumes' cranes), leave (containers
        back, post-commands), then the cranes of its stages, containers up."""
        if group.problems:
            for reason in group.problems:
                log.error("%s", reason)
            self.result.problems += group.problems
            return self._fail(group, f"not backed up: {group.problems[0]}")
        down = Downtime(
            self.engine,
            self.record,
            self.run_id,
            self.tide.name,
            self._aborting,
            lambda: self.result.interrupted,
        )
        group_run = GroupRun(group, down)
        try:
            self._enter(group_run)
            self._while_down(group_run)
        except Interrupted as error:
            group_run.aborted = error.problem
        except Veto as error:
            group_run.aborted = Problem(f"group {group.name}", str(error))
        except RecordError as error:
            group_run.aborted = Problem(f"group {group.name}", f"nothing more stopped: {error}")
        except (*ENGINE_ERRORS, EngineError) as error:
            group_run.aborted = Problem(
                f"group {group.name}", f"safe state failed: {describe(error)}"
            )
        finally:
            self._leave(group_run)
        try:
            self._back_up_stages(group_run)
        finally:
            self._leave_stages(group_run.entered)
        return self._group_done(group_run)

    def _enter(self, group_run: GroupRun) -> None:
        """Containers up: the pre-commands, the stager ready; then each container that
        changes into its safe state (dependents first)."""
        group, down = group_run.group, group_run.down
        # Decide on each container's state as it is now, not as it was when planned.
        now = {s.container.id: containers.current(self.engine, s.container.id) for s in group.steps}
        live = [s for s in group.steps if now[s.container.id].state in LIVE]
        # Commands run only inside a container that runs (not one between restarts).
        commands = [s for s in live if now[s.container.id].state == "running"]
        group_run.now, group_run.live, group_run.commands = now, live, commands
        self._run_pres(group_run)
        changes = [s for s in live if s.settings.action in states.UNDO]
        # Staging but the copies, before anything goes down; after the pre-commands, so
        # that a dump they write into a volume counts in the room its stage needs.
        if changes:
            group_run.stager, group_run.results = self._prepare_stages(group, group_run.entered)
        down.check(f"group {group.name}")
        for step in live:
            if step in commands and step not in changes:
                down.post_due(step.container, step.settings)
        if changes:
            self.observers.containers_leaving(self.view, group)
            group_run.leaving = True
        steps = {s.container.id: s for s in changes}

        def before(container) -> None:
            step = steps[container.id]
            if step in commands:
                down.post_due(container, step.settings)
            log.info("container %s: %s", container.name, step.settings.action)

        down.enter_all(
            [(s.container, s.settings.action, now[s.container.id].stop_timeout) for s in changes],
            group.order,
            before,
        )

    def _run_pres(self, group_run: GroupRun) -> None:
        """The pre-command of each running container; one that fails ends the group."""
        for step in group_run.commands:
            group_run.down.check(f"group {group_run.group.name}")
            if step.settings.pre:
                group_run.down.post_due(step.container, step.settings)
                log.info("container %s: running pre-command", step.container.name)
                problem = states.run_command(
                    self.engine, step.container, step.settings, "pre", self.tide.command_timeout
                )
                if problem:
                    raise Interrupted(problem)
                group_run.pre_done.append(step)

    def _while_down(self, group_run: GroupRun) -> None:
        """Containers in their safe states: the stages filled, and the cranes of the volumes
        not staged; a container that changed meanwhile makes their backups inconsistent."""
        group = group_run.group
        if group_run.stager and group_run.down.since is not None:
            group_run.results += self._stage(group, group_run.stager, group_run.staged)
        done = group_run.staged.keys() | {r.volume for r in group_run.results}
        group_run.results += self._run_cranes(group, [v for v in group.volumes if v not in done])
        disturbed = group_run.down.disturbed() or self._left_alone(
            group, group_run.now, group_run.live
        )
        if disturbed:
            group_run.inconsistent = [r.volume for r in group_run.results if r.ok]
            raise Interrupted(Problem(f"group {group.name}", f"{disturbed}: backup not consistent"))

    def _leave(self, group_run: GroupRun) -> None:
        """Whatever happened: every changed container back (dependencies first), the
        post-commands (only of the pre-commands that ran, after a failure), the stager gone."""
        group, down = group_run.group, group_run.down
        self.result.errors += down.end()
        if group_run.leaving:
            self.observers.containers_back(self.view, group)
        if down.since is not None:
            self.result.downtime += down.seconds
            log.info("group %s: containers were down for %.2f s", group.name, down.seconds)
        self._run_posts(
            reversed(group_run.pre_done if group_run.aborted else group_run.commands),
            self.tide.command_timeout,
        )
        down.posts_done()
        if group_run.stager:  # its stages are full (or will not be): their cranes need it no more
            staging.remove_stager(self.engine, group_run.stager)

    def _back_up_stages(self, group_run: GroupRun) -> None:
        """Containers up again: the cranes of the stages filled, unless the group failed."""
        if group_run.staged and not group_run.aborted:
            staged = group_run.staged
            group_run.results += self._run_cranes(group_run.group, list(staged), staged)

    def _group_done(self, group_run: GroupRun) -> List[VolumeResult]:
        """The group's results in its volumes' order: all failed if it was cut short."""
        group, results = group_run.group, group_run.results
        if group_run.aborted:
            log.error("%s", group_run.aborted)
            results = self._fail(group, f"not backed up: {group_run.aborted}")
        results.sort(key=lambda result: group.volumes.index(result.volume))
        # Their snapshots exist but cannot be trusted: never a restore's default.
        mark_inconsistent(self.engine, self.call, group_run.inconsistent, str(group_run.aborted))
        for result in results:
            result.downtime = group_run.down.seconds
        self.observers.group_done(self.view, group, group_run.down.seconds)
        return results

    def _run_posts(self, steps, timeout: float) -> None:
        for step in steps:
            if step.settings.post:
                log.info("container %s: running post-command", step.container.name)
                problem = states.run_command(
                    self.engine, step.container, step.settings, "post", timeout
                )
                if problem:
                    log.error("%s", problem)
                    self.result.errors.append(problem)

    def _left_alone(self, group: Group, before: dict, live: list) -> Optional[str]:
        """Someone started a container of the group that the run left as it was (stopped,
        created, paused): it may have written to the volumes mid-backup."""
        for step in group.steps:
            if step not in live:
                why = states.left_alone(self.engine, step.container.id, before[step.container.id])
                if why:
                    return f'container "{step.container.name}" {why}'
        return None

    def _prepare_stages(
        self, group: Group, entered: List[Entry]
    ) -> Tuple[Optional[staging.Stager], List[VolumeResult]]:
        """With every container up: the group's stager, started, knowing which volumes it can
        stage (it and its stage volumes recorded, and appended to `entered`), and the volumes
        that failed (staging = always). A volume that auto cannot stage is left out of both:
        its crane runs the classic way, containers down."""
        if self.staging == "never":
            return None, []
        volumes = []
        for volume in group.volumes:
            if volume in self.call.binds:
                continue  # a bind mount's directory: the classic way (a stager mounts volumes)
            try:
                # A missing volume: mounting it would create it (its crane says it is gone).
                self.engine.api.inspect_volume(volume)
            except NotFound:
                continue
            if restoring.of(self.record.entries(), volume):
                continue  # its crane says why it is not backed up
            volumes.append(volume)
        if not volumes:
            return None, []
        self._check_aborted(f"group {group.name}")
        stager = None

        def enter(kind: str, name: str) -> None:
            item = stage_entries.entry(kind, name, " ".join(volumes), self.run_id, self.tide.name)
            self.record.add(item)
            entered.append(item)

        try:
            stager = staging.prepare(
                self.engine,
                self.crane.image,
                volumes,
                self.staging,
                self.call.labels(" ".join(volumes)),
                self.config.state_directory,
                self.tide.crane_timeout,
                self.run_id,
                enter,
            )
            failures = stager.failed
        except (*ENGINE_ERRORS, EngineError) as error:
            self._check_aborted(f"group {group.name}")
            failures = {volume: describe(error) for volume in volumes}
        return stager, self._not_staged(group, failures)

    def _leave_stages(self, entered: List[Entry]) -> None:
        """The group's stager (removed already, once its copies were done) and stage
        volumes removed, then left in the record; one that cannot be removed stays recorded,
        for recover."""
        for item in reversed(entered):  # the stager before the volumes it mounts
            try:
                stage_entries.remove(self.engine, item)
            except DockerException as error:
                log.warning("%s: cannot be removed: %s", item.container, describe(error))
                continue
            try:
                self.record.remove(item)
            except RecordError as error:
                log.warning("%s", error)

    def _not_staged(self, group: Group, failures: Dict[str, str]) -> List[VolumeResult]:
        """Volumes that cannot be staged: one line each; failed with `always`, the classic
        way (their cranes run with the containers down) with `auto`."""
        failed = []
        for volume, why in failures.items():
            if self.staging == "always":
                message = f"cannot be staged (staging = always): {why}"
                log.error("volume %s: %s", volume, message)
                failed.append(self._volume(volume, group, False, message))
            else:
                log.warning(
                    "volume %s: not staged (%s): backed up with its containers down", volume, why
                )
        return failed

    def _stage(
        self, group: Group, stager: staging.Stager, staged: Dict[str, staging.Stage]
    ) -> List[VolumeResult]:
        """Containers down: copy every volume the stager can stage, all at once (the stages
        made are filled into `staged`); the volumes that failed (staging = always). A copy
        that fails goes like a stage that could not be made: auto backs its volume up the
        classic way, while the containers are still down. A failed copy's stage is removed
        at once (with the stager, which mounts it): a copy that filled the disk would keep
        the containers from starting again."""
        self._check_aborted(f"group {group.name}")
        copies = staging.copy(self.engine, stager, self.tide.crane_timeout)
        failures = {}
        for volume, outcome in copies.items():
            if isinstance(outcome, staging.Stage):
                staged[volume] = outcome
                log.info("volume %s: staged in %.2f s (%s)", volume, outcome.seconds, outcome.how)
            else:
                failures[volume] = outcome
        if failures:
            staging.remove_stager(self.engine, stager)
            for volume in failures:  # (removed again with the others: then already gone)
                staging.remove(self.engine, stager.stages[volume])
        self._check_aborted(f"group {group.name}")  # an abort kills the stager: copies fail
        return self._not_staged(group, failures)

    def _previous(self, volume: str) -> Optional[str]:
        """The snapshot the crane reported for the volume's last good backup in this tide:
        a hint (restic's parent) that saves the crane a lookup."""
        try:
            last = History(self.config.state_directory).last_good(self.tide.name, volume)
        except HistoryError:
            return None  # only a hint: the crane looks it up itself
        return last.get("snapshot") if last else None

    def _run_cranes(
        self, group: Group, volumes: List[str], stages: Optional[Dict[str, staging.Stage]] = None
    ) -> List[VolumeResult]:
        if not volumes:
            return []
        stages = stages or {}
        workers = min(self.tide.max_concurrent, self.crane.max_concurrent, len(volumes))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(lambda v: self._run_crane(group, v, stages.get(v)), volumes))

    def _run_crane(
        self, group: Group, volume: str, stage: Optional[staging.Stage] = None
    ) -> VolumeResult:
        started, wall = time.monotonic(), time.time()
        crane = self.crane
        code, error, report = None, None, None
        try:
            self._check_aborted(f"volume {volume}")  # before saying it starts: it may not
            unfinished = restoring.of(self.record.entries(), volume)
            if unfinished:  # its backup could rotate away the snapshot being restored
                error = f"half restored: not backed up until `{restoring.command(unfinished)}`"
            else:
                self.observers.volume_started(self.view, volume)
                log.info(
                    "volume %s: backing up (crane %s)%s",
                    volume,
                    crane.name,
                    " from its stage, containers up" if stage else "",
                )
                code, report = self.call.backup(
                    self.engine,
                    volume,
                    self._aborting,
                    stage=stage.name if stage else None,
                    previous=self._previous(volume),
                )
                if code != 0:
                    error = f'crane "{crane.name}" exited with {code}'
        except Interrupted:
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
            log.info("volume %s: backed up in %.2f s%s", volume, seconds, stored(report))
        reported = vars(report) if report and not error else {}
        result = self._volume(
            volume,
            group,
            error is None,
            error or "",
            exit_code=code,
            seconds=seconds,
            started=wall,
            size=reported.get("bytes_stored"),
            bytes_read=reported.get("bytes_read"),
            files=reported.get("files"),
            snapshot=reported.get("snapshot"),
        )
        result.shrunk = shrink.check(
            self.config.state_directory, self.tide.name, result, self.tide.shrink_alert
        )
        return result


def run(
    engine: Engine, config: Config, tides: List[str], observers: Iterable[Observer] = ()
) -> int:
    """Run the tides one after another; the worst exit code.

    SIGTERM, SIGINT and SIGHUP abort the running tide (its cranes are killed, its
    containers restored) and start no further tide.
    """
    observers = list(observers)
    current: List[TideRun] = []

    def on_signal(name: str) -> None:
        for tide_run in current:
            tide_run.abort(name)

    with signals_unwind(on_signal) as stopped:
        # A run that died before this one may have left containers down.
        codes = [EXIT_FAILED if recover(engine, config) else EXIT_OK]
        for tide in tides:
            if stopped:
                log.error("tide %s: not run (%s)", tide, stopped[0])
                codes.append(EXIT_FAILED)
                continue
            # systemd sets INVOCATION_ID for every unit it starts (a timer's, or by hand).
            trigger = "service" if os.environ.get("INVOCATION_ID") else "manual"
            tide_run = TideRun(engine, config, tide, observers, trigger)
            current[:] = [tide_run]
            if stopped:  # a signal between the check and now
                tide_run.abort(stopped[0])
            codes.append(tide_run.run().exit_code)
        return max(codes)
