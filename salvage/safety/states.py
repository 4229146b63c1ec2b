"""Safe states and their reversal: what salvage does to a container, and how it undoes it.

Only a container that is live (running, or restarting) when salvage reaches it is changed
(stopped or paused). Every change is first written to the record (salvage.safety.record), so that
it can be undone by this run or, if this run dies, by `salvage recover`. Undoing goes
through `restore`, which brings a container back to its prior state unless someone else
changed it since: a person's start, stop or removal stands, and is reported. Whether
someone did is decided on the engine's own timestamps, never on salvage's clock.
"""

from __future__ import annotations

import calendar
import contextlib
import dataclasses
import logging
import re
import threading
import time
from dataclasses import dataclass
from typing import List, Optional

from salvage.core import ordering
from salvage.core.labels import Settings, parse_exit_policy
from salvage.core.model import LIVE, Container, Problem
from salvage.core.ordering import Order
from salvage.engine import containers
from salvage.engine.client import Engine, EngineError, describe
from salvage.engine.errors import APIError
from salvage.safety.record import Entry, Record, RecordError

log = logging.getLogger("salvage")
UNDO = ("stop", "pause")
_RECORDED = threading.Lock()  # a downtime's list of entries, changed from several threads
_DOCKER_TIME = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?Z")


def _epoch(docker_time: str) -> float:
    """Docker's RFC 3339 times with nanoseconds ("...T07:08:26.123456789Z")."""
    match = _DOCKER_TIME.match(docker_time or "")
    if not match:
        return 0.0
    whole = calendar.timegm(time.strptime(match.group(1), "%Y-%m-%dT%H:%M:%S"))
    return whole + float(match.group(2) or 0)


def enter(
    engine: Engine,
    record: Record,
    container: Container,
    action: str,
    stop_timeout: int,
    run_id: str,
    tide: str,
    recorded: Optional[List[Entry]] = None,
) -> Entry:
    """Stop or pause a live container, recorded first. The entry goes into `recorded` as
    soon as it is on disk: from then on the change may happen, whatever this call says."""
    info = containers.inspect(engine, container.id)
    if info is None:
        raise EngineError(f'container "{container.name}" no longer exists')
    state = info["State"]
    if action == "stop" and (info.get("HostConfig") or {}).get("AutoRemove"):
        raise EngineError(
            f'container "{container.name}" was started with --rm (AutoRemove): not stopped,'
            " which would delete it"
        )
    entry = Entry(
        container.id,
        container.name,
        action,
        state["Status"],
        time.time(),
        run_id,
        tide,
        started_at=state.get("StartedAt") or "",
    )
    record.add(entry)  # on disk before the change
    if recorded is not None:
        with _RECORDED:
            recorded.append(entry)
    try:
        if action == "stop":
            containers.stop(engine, container.id, stop_timeout)
        elif action == "pause":
            containers.pause(engine, container.id)
        else:
            raise ValueError(action)
    except APIError:
        # Refused by the engine: if it is still as it was, there is nothing to undo. If that
        # cannot be known, the entry stays (restoring it later finds out).
        with contextlib.suppress(Exception):
            now = containers.inspect(engine, container.id) or {}
            if now.get("State", {}).get("Status") in LIVE and not _started_since(now, entry):
                record.remove(entry)
                if recorded is not None:
                    with _RECORDED:
                        recorded.remove(entry)
        raise
    if action == "stop":
        # Once stopped: a later start is someone else's (the engine's clock).
        with contextlib.suppress(Exception):
            stopped = (containers.inspect(engine, container.id) or {}).get("State", {})
            for _ in range(3):  # a restart loop may have started it once more meanwhile
                if stopped.get("Status") not in LIVE:
                    break
                containers.stop(engine, container.id, stop_timeout)
                stopped = (containers.inspect(engine, container.id) or {}).get("State", {})
            if stopped.get("FinishedAt") and stopped.get("Status") not in LIVE:
                done = dataclasses.replace(
                    entry,
                    started_at=stopped.get("StartedAt") or entry.started_at,
                    stopped_at=stopped["FinishedAt"],
                )
                record.add(done)
                if recorded is not None:
                    with _RECORDED:
                        recorded[recorded.index(entry)] = done
                entry = done
    return entry


@dataclass(frozen=True)
class Outcome:
    done: Optional[str]  # what salvage did: "started", "unpaused", or None
    note: Optional[str] = None  # why it did nothing, when that is worth telling

    def __str__(self) -> str:
        return self.done or self.note or "nothing to do"


def restore(engine: Engine, entry: Entry) -> Outcome:
    """Bring a stopped or paused container back to its prior state (running).

    Engine calls are retried while the engine is unreachable (e.g. restarting).
    """
    info = engine.retry(containers.inspect, engine, entry.container)
    if info is None:
        return Outcome(None, "was removed by someone else; nothing to restore")
    state = info["State"]["Status"]
    if state in LIVE and entry.change == "stop" and not _started_since(info, entry):
        # Never restarted since salvage meant to stop it: its stop may still be under way
        # (salvage died during the container's grace period). Let it finish, then start it.
        info = _stopped_within(engine, entry, info)
        if info is None:
            return Outcome(None, "was removed by someone else; nothing to restore")
        state = info["State"]["Status"]
        if state in LIVE:
            return Outcome(None, f"is {state}: it was never stopped")
    if state in LIVE:
        return Outcome(None, f"is {state}: started by someone else meanwhile")
    if state == "paused":
        if entry.change == "pause":
            engine.retry(containers.unpause, engine, entry.container)
            return Outcome("unpaused")
        return Outcome(None, "was paused by someone else; left paused")
    if state == "dead":  # someone's removal failed half way: the engine will not start it
        return Outcome(None, "is dead (someone else's removal failed); left as it is")
    if state in ("exited", "created"):
        if _started_since(info, entry):
            return Outcome(None, "was started and stopped again by someone else; left stopped")
        # Stopped by salvage, or (when salvage paused it) by an engine restart.
        engine.retry(containers.start, engine, entry.container)
        return Outcome("started")
    return Outcome(None, f"is {state}; left as it is")


def _started_since(info: dict, entry: Entry) -> bool:
    """Started again since salvage changed it: the engine's times, never salvage's clock
    (the two may disagree by minutes)."""
    started = _epoch(info["State"].get("StartedAt"))
    if entry.started_at:  # its last start before salvage's change (FinishedAt is no help:
        return started > _epoch(entry.started_at)  # a stop in a restart loop may predate it)
    return started > entry.since  # an entry written by an older salvage


def _stopped_within(engine: Engine, entry: Entry, info: dict) -> Optional[dict]:
    """Wait out the container's own stop timeout (and a little) for it to stop."""
    timeout = (info.get("Config") or {}).get("StopTimeout")
    deadline = (
        time.monotonic() + (containers.DOCKER_STOP_TIMEOUT if timeout is None else timeout) + 5
    )
    now: Optional[dict] = info
    while now is not None and now["State"]["Status"] in LIVE:
        if time.monotonic() > deadline:
            break
        time.sleep(0.2)
        now = engine.retry(containers.inspect, engine, entry.container)
    return now


def restore_all(
    engine: Engine, record: Record, changes: List[Entry], order: Optional[Order] = None
) -> List[Problem]:
    """Bring back every changed container: each once the ones it depends on (`order`) are
    back, unrelated ones at once; one at a time, newest change first, when the order is
    unknown (or not given). The record forgets each one that is back. One that cannot be
    is logged, and stays recorded for `salvage recover`; its dependents are still started.
    A record that cannot be written stops nothing: every container is still brought back."""
    problems: List[Problem] = []
    unwritable: List[RecordError] = []
    order = order or Order(unknown="not given")

    def one(entry: Entry) -> None:
        where = f'container "{entry.name}"'
        try:
            outcome = restore(engine, entry)
        except Exception as error:
            problem = Problem(
                where, f"could not be restored: {describe(error)} (recorded for `salvage recover`)"
            )
            log.error("%s", problem)
            problems.append(problem)
            return
        if outcome.done:
            log.info("container %s: %s", entry.name, outcome)
        else:
            log.warning("%s: %s", where, outcome)
        try:
            record.remove(entry)
        except RecordError as error:
            unwritable.append(error)

    ordering.in_order(
        list(reversed(changes)),
        lambda entry: entry.container,
        order.after,
        one,
        order.workers,
        keep_going=True,
    )
    if unwritable and _still_recorded(record, changes):  # (emptying it needs no space)
        problem = Problem("record", f"{unwritable[0]} (its containers are back all the same)")
        log.error("%s", problem)
        problems.append(problem)
    return problems


def _still_recorded(record: Record, changes: List[Entry]) -> bool:
    try:
        return bool({e.key for e in record.entries()} & {e.key for e in changes})
    except RecordError:
        return True


def disturbed(engine: Engine, entry: Entry) -> Optional[str]:
    """Why a container salvage stopped or paused is no longer so, mid-backup (or None)."""
    info = containers.inspect(engine, entry.container)
    if info is None:
        return "was removed"
    state = info["State"]["Status"]
    expected = ("exited", "created", "dead") if entry.change == "stop" else ("paused",)
    if state not in expected:
        return f"was {state} by someone else during the backup"
    if _started_since(info, entry):
        return "was started (and stopped again) by someone else during the backup"
    return None


def left_alone(engine: Engine, container_id: str, before: containers.Current) -> Optional[str]:
    """Why a container salvage left as it was (stopped, created, paused) is not so any more:
    started by someone during the backup, it may have written to the volumes (or None)."""
    now = containers.current(engine, container_id)
    if now.state is None or before.state is None:
        return None  # removed: it wrote nothing more
    if now.started_at != before.started_at:
        return "was started by someone else during the backup"
    if now.state != before.state:
        return f"was {now.state} by someone else during the backup"
    return None


def post_entry(container: Container, settings: Settings, run_id: str, tide: str) -> Entry:
    return Entry(
        container.id,
        container.name,
        "post",
        "running",
        time.time(),
        run_id,
        tide,
        command=settings.post,
        user=settings.user,
        exit_policy=settings.exit_policy.text,
    )


def run_command(
    engine: Engine,
    container: Container,
    settings: Settings,
    which: str,
    timeout: float,
) -> Optional[Problem]:
    """Run the pre or post command; a Problem when its exit code aborts under the policy."""
    command = (settings.pre if which == "pre" else settings.post) or ""
    where = f'container "{container.name}": {which}-command "{command}"'
    try:
        code, output = containers.execute(engine, container.id, command, settings.user, timeout)
    except containers.CommandTimeout as error:
        return Problem(where, str(error))
    except Exception as error:  # any engine failure is the command's failure
        return Problem(where, f"could not run: {describe(error)}")
    last = output.strip().splitlines()[-1] if output.strip() else ""
    if code != 0 and settings.exit_policy.aborts(code):
        return Problem(where, f"exited with {code}" + (f": {last}" if last else ""))
    return None


def run_recorded_post(engine: Engine, entry: Entry, timeout: float) -> Optional[Problem]:
    """A post-command from the record, for a container that is running (and not paused)."""
    settings = Settings(
        action="ignore",
        post=entry.command,
        user=entry.user,
        exit_policy=parse_exit_policy(entry.exit_policy),
    )
    container = Container(entry.container, entry.name, "running")
    return run_command(engine, container, settings, "post", timeout)
