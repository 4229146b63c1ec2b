"""`salvage recover`: bring back every container that a salvage run left down.

Reads the record (salvage.safety.record) that runs write before each change, restores each
container to its prior state unless someone else changed it since, runs due
post-commands, removes leftover cranes, stagers and stage volumes, and clears what it
handled. Idempotent: with an empty record it only looks for leftovers. Runs at the start
of every run and from the service's ExecStopPost=.
"""

from __future__ import annotations

import logging
from typing import List

from salvage.config import Config
from salvage.config.schema import Tide
from salvage.core import labels
from salvage.core.model import Problem
from salvage.engine import containers, volumes
from salvage.engine.client import Engine, describe
from salvage.engine.errors import DockerException
from salvage.safety import restoring, stage_entries, states
from salvage.safety.record import Record, RecordError

log = logging.getLogger("salvage")


def recover(engine: Engine, config: Config) -> List[Problem]:
    """Problems for the containers that could not be restored (they stay recorded).
    RecordDamaged when the record cannot be read: nothing is touched then."""
    record = Record(config.state_directory)
    problems: List[Problem] = []
    unwritable: List[RecordError] = []
    entries = record.entries()
    # A half-restored volume: its users stay down (and recorded) until the restore is done.
    unfinished = restoring.interrupted(entries)
    for restore in unfinished.values():
        users = [e.name for e in restoring.held(entries, restore)]
        unrestored = Problem(f"volume {restore.name}", restoring.explain(restore, users))
        problems.append(unrestored)
        log.error("recover: %s", unrestored)

    def forget(entry) -> None:
        try:
            record.remove(entry)
        except RecordError as error:  # what it names is back (or gone) all the same
            unwritable.append(error)

    def unhandled(problem: Problem) -> None:  # the entry stays, for the next recover
        problems.append(problem)
        log.error("recover: %s", problem)

    # Newest first: the reverse of the order in which the run changed them.
    for entry in reversed(entries):
        if entry.run_id in unfinished or stage_entries.of(entry):
            continue
        where = f'container "{entry.name}"'
        why = f"{entry.change} by run {entry.run_id[:8]} of tide {entry.tide}"
        try:
            if entry.change == "post":
                timeout = config.tides.get(entry.tide, Tide(entry.tide)).command_timeout
                info = engine.retry(containers.inspect, engine, entry.container)
                if info is None or info["State"]["Status"] != "running":
                    log.warning("recover: %s: not running; its post-command is not run", where)
                else:
                    problem = states.run_recorded_post(engine, entry, timeout)
                    if problem:
                        problems.append(problem)
                        log.error("recover: %s", problem)
                    else:
                        log.info("recover: %s: ran its post-command", where)
            else:
                outcome = states.restore(engine, entry)
                if outcome.done:
                    log.info("recover: %s (%s): %s", where, why, outcome)
                else:
                    log.warning("recover: %s (%s): %s", where, why, outcome)
        except Exception as error:  # the engine is unreachable, or refused
            unhandled(Problem(where, f"could not be restored ({why}): {describe(error)}"))
            continue
        forget(entry)
    leftovers = remove_leftover_cranes(engine, config.state_directory)
    # Stages and stagers once the cranes are gone (a crane mounts its stage); a stager
    # before the stages it mounts (newest first).
    for entry in reversed(entries):
        if not stage_entries.of(entry):
            continue
        where = stage_entries.describe(entry)
        try:
            if stage_entries.remove(engine, entry):
                log.info("recover: removed leftover %s", where)
        except Exception as error:  # the engine is unreachable, or refused
            unhandled(
                Problem(where, f"cannot be removed (run {entry.run_id[:8]}): {describe(error)}")
            )
            continue
        forget(entry)
    if unwritable:
        problems.append(Problem("recover", str(unwritable[0])))
        log.error("recover: %s", unwritable[0])
    for label, kind in ((labels.SCRATCH, "scratch"), (labels.STAGE, "stage")):
        leftovers += volumes.remove_leftovers(engine, label, kind, config.state_directory)
    for problem in leftovers:  # every problem is said, never only counted in the exit code
        log.error("recover: %s", problem)
    return problems + leftovers


def remove_leftover_cranes(engine: Engine, state_directory: str) -> List[Problem]:
    """This salvage's cranes from runs that died (the lock says no run of it is live)."""
    mine = {"label": [labels.CRANE, f"{labels.INSTANCE}={state_directory}"]}
    problems = []
    try:
        leftovers = engine.retry(lambda: engine.api.containers(all=True, filters=mine))
    except DockerException as error:
        return [Problem("recover", f"cannot list leftover cranes: {describe(error)}")]
    for crane in leftovers:
        name = (crane.get("Names") or ["?"])[0].lstrip("/")
        try:
            engine.api.remove_container(crane["Id"], force=True)
            log.info("recover: removed leftover crane %s", name)
        except DockerException as error:
            problems.append(Problem(f'crane "{name}"', f"cannot be removed: {describe(error)}"))
    return problems
