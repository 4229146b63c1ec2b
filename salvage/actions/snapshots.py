"""`salvage snapshots VOLUME`: what the crane can restore of a volume."""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import List, Optional

from salvage.config import Config, Tide
from salvage.core.dumps import tide_dumps
from salvage.core.labels import VOLUME_NAME
from salvage.core.planning import tide_volumes
from salvage.crane.invoke import Call
from salvage.engine import client
from salvage.engine.client import Engine
from salvage.engine.discovery import discover
from salvage.errors import SalvageError

log = logging.getLogger("salvage")


class RestoreError(SalvageError):
    """One line for a person: what cannot be done, and why."""


@dataclass(frozen=True)
class Snapshot:
    id: str
    time: str
    size: Optional[int] = None
    consistent: bool = True  # false: the run that made it saw its volume's users disturbed

    def as_dict(self) -> dict:
        return {"id": self.id, "time": self.time, "size": self.size, "consistent": self.consistent}


def tide_of(engine: Engine, config: Config, volume: str, tide: Optional[str]) -> Tide:
    """The tide whose crane holds the volume's snapshots: --tide, else the tide whose labels
    name it, else the only tide there is."""
    if tide:
        if tide not in config.tides:
            raise RestoreError(f'no tide named "{tide}" in {config.path}')
        return config.tides[tide]
    host = discover(engine)
    naming = [n for n, t in config.tides.items() if volume in tide_volumes(host, t)[0]]
    naming += [
        name for name in config.tides if volume in (d.name for d in tide_dumps(host, name)[0])
    ]
    if len(naming) == 1:
        return config.tides[naming[0]]
    if not naming and len(config.tides) == 1:
        return next(iter(config.tides.values()))
    choices = ", ".join(naming or sorted(config.tides))
    raise RestoreError(f"volume {volume}: which tide's crane? choose with --tide ({choices})")


def parse(volume: str, output: str) -> List[Snapshot]:
    """The crane's JSON lines; anything else it printed is logged, not trusted."""
    found = []
    for line in output.splitlines():
        try:
            item = json.loads(line)
            found.append(
                Snapshot(
                    str(item["id"]),
                    str(item.get("time", "")),
                    item.get("size"),
                    item.get("consistent", True) is not False,
                )
            )
        except (ValueError, KeyError, TypeError):
            if line.strip():
                log.info("%s: %s", volume, line)
    return found


def snapshots(engine: Engine, call: Call, volume: str) -> List[Snapshot]:
    code, output = call.run(engine, "list", volume)
    if code != 0:
        raise RestoreError(f'crane "{call.crane.name}" could not list {volume}: exit {code}')
    return parse(volume, output)


def machine_volumes(engine: Engine, call: Call) -> List[str]:
    """The volumes the crane has snapshots of for the call's machine (its `volumes` action),
    by name. A name that is not a volume name is untrusted input: left out, with a warning."""
    code, output = call.run(engine, "volumes", "")
    machine = call.machine or call.config.machine
    if code == 64:
        raise RestoreError(
            f'crane "{call.crane.name}" cannot list the volumes of a machine'
            " (no volumes action): name each volume"
        )
    if code != 0:
        raise RestoreError(
            f'crane "{call.crane.name}" could not list the volumes of machine'
            f" {machine}: exit {code}"
        )
    found = set()
    for line in output.splitlines():
        try:
            name = json.loads(line)["volume"]
        except (ValueError, KeyError, TypeError):
            name = None
        if isinstance(name, str) and re.fullmatch(VOLUME_NAME, name):
            found.add(name)
        elif line.strip():
            log.warning(
                'crane "%s": not a volume of machine %s: %s', call.crane.name, machine, line[:200]
            )
    return sorted(found)


def moment(text: str) -> Optional[datetime]:
    """A time as cranes and people write it (ISO 8601, or 20261126T030000Z), aware; one
    without a zone is local time. None: not a time."""
    text = text.strip()
    try:
        return datetime.strptime(text, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
    except ValueError:
        pass
    text = re.sub(r"[zZ]$", "+00:00", text)
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)  # restic gives nanoseconds
    try:
        found = datetime.fromisoformat(text)
    except ValueError:
        return None
    return found if found.tzinfo else found.astimezone()


def mark_inconsistent(engine: Engine, call: Call, volumes: List[str], why: str) -> None:
    """Have the crane mark the snapshots this run made of `volumes` as not consistent (its
    `mark` action), so that no restore takes one of them unless it is named. The reason is
    given as plain ASCII, without quotes or backslashes: a socket proxy refuses a crane
    whose body JSON escapes (docs/docker-api.md)."""
    why = re.sub(r"[^\x20-\x7e]", "?", why).replace('"', "'").replace("\\", "/")
    for volume in volumes:
        try:
            code, _ = call.run(engine, "mark", volume, env={"SALVAGE_MARK": why})
        except Exception as error:  # the run's result stands; say what is left undone
            code = client.describe(error)
        if code == 0:
            log.warning("volume %s: this run's snapshot is marked not consistent", volume)
        else:
            log.error(
                "volume %s: this run's snapshot could not be marked not consistent"
                ' (crane "%s": %s)',
                volume,
                call.crane.name,
                "mark not supported" if code == 64 else code,
            )


def choose(
    crane: str,
    volume: str,
    found: List[Snapshot],
    wanted: Optional[str],
    before: Optional[datetime] = None,
) -> Snapshot:
    """The named snapshot; else ("latest" too) the newest one not marked inconsistent
    (taken before `before`, when given)."""
    if not found:
        raise RestoreError(f'crane "{crane}" has no snapshot of {volume}')
    if before and not wanted:
        earlier = [s for s in found if (moment(s.time) or before) < before]
        if not earlier:
            raise RestoreError(
                f'crane "{crane}" has no snapshot of {volume} taken before'
                f" {before.isoformat(timespec='seconds')}"
            )
        found = earlier
    if wanted and wanted != "latest":
        for snapshot in found:
            if snapshot.id == wanted:
                return snapshot
        raise RestoreError(
            f'crane "{crane}" has no snapshot {wanted} of {volume}'
            f" (it has: {', '.join(s.id for s in found[:5])}{' ...' if len(found) > 5 else ''})"
        )
    for snapshot in found:
        if snapshot.consistent:
            return snapshot
    raise RestoreError(
        f'crane "{crane}" has only snapshots marked not consistent of {volume}:'
        f" name one with --snapshot ({', '.join(s.id for s in found[:5])})"
    )


def describe(found: List[Snapshot]) -> str:
    if not found:
        return "no snapshots"
    return "\n".join(
        f"{s.id}  {s.time}  {'' if s.size is None else s.size}"
        f"{'' if s.consistent else '  NOT CONSISTENT (restored only if named)'}".rstrip()
        for s in found
    )


def describe_volumes(machine: str, listed: dict) -> str:
    """Each volume of a machine: how many snapshots, and the newest."""
    if not listed:
        return f"no snapshots of machine {machine}"
    rows = [("VOLUME", "SNAPSHOTS", "NEWEST")]
    rows += [(v, str(len(f)), f"{f[0].id}  {f[0].time}" if f else "-") for v, f in listed.items()]
    width = [max(len(r[i]) for r in rows) for i in range(2)]
    return "\n".join(f"{r[0]:<{width[0]}}  {r[1]:>{width[1]}}  {r[2]}" for r in rows)
