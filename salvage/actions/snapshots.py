"""`salvage snapshots VOLUME`: what the crane can restore of a volume."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import List, Optional

from salvage.config import Config, Tide
from salvage.dumps import tide_dumps
from salvage.engine import client
from salvage.engine.client import Engine
from salvage.engine.discovery import discover
from salvage.errors import SalvageError
from salvage.invoke import Call
from salvage.planning import tide_volumes

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
    naming = [name for name in config.tides if volume in tide_volumes(host, name)[0]]
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
            found.append(Snapshot(str(item["id"]), str(item.get("time", "")), item.get("size"),
                                  item.get("consistent", True) is not False))  # fmt: skip
        except (ValueError, KeyError, TypeError):
            if line.strip():
                log.info("%s: %s", volume, line)
    return found


def snapshots(engine: Engine, call: Call, volume: str) -> List[Snapshot]:
    code, output = call.run(engine, "list", volume)
    if code != 0:
        raise RestoreError(f'crane "{call.crane.name}" could not list {volume}: exit {code}')
    return parse(volume, output)


def mark_inconsistent(engine: Engine, call: Call, volumes: List[str], why: str) -> None:
    """Have the crane mark the snapshots this run made of `volumes` as not consistent (its
    `mark` action), so that no restore takes one of them unless it is named."""
    for volume in volumes:
        try:
            code, _ = call.run(engine, "mark", volume, env={"SALVAGE_MARK": why})
        except Exception as error:  # the run's result stands; say what is left undone
            code = client.describe(error)
        if code == 0:
            log.warning("volume %s: this run's snapshot is marked not consistent", volume)
        else:
            log.error('volume %s: this run\'s snapshot could not be marked not consistent'
                      ' (crane "%s": %s)', volume, call.crane.name,
                      "mark not supported" if code == 64 else code)  # fmt: skip


def choose(crane: str, volume: str, found: List[Snapshot], wanted: Optional[str]) -> Snapshot:
    """The named snapshot; else ("latest" too) the newest one not marked inconsistent."""
    if not found:
        raise RestoreError(f'crane "{crane}" has no snapshot of {volume}')
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
