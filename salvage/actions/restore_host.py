"""`salvage restore --machine M --all`: every volume machine M has snapshots of, back on
this host (a new one, after M is gone), so that `docker compose up` adopts them.

Each volume goes through `restore` (salvage.actions.restore) with its rules: the snapshot's
metadata is untrusted (driver and options only with --trust-meta-options), a volume that
exists is refused unless --force (then a safety backup of it first). A volume this command
creates carries the labels.RESTORED marker, so that a rerun after an interruption tells
the volumes it finished (not empty: left alone) from those it had only created (empty:
filled now); one killed while its content was being replaced is in the record, and
finished from the same snapshot.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import List, Optional

from salvage.actions.restore import _options, restore, volume_spec
from salvage.actions.snapshots import RestoreError, Snapshot, choose, machine_volumes, snapshots
from salvage.config import Config, Tide
from salvage.core import labels
from salvage.crane.invoke import Call
from salvage.engine import volumes
from salvage.engine.client import Engine, describe
from salvage.engine.cranes import check_secrets, ensure_image
from salvage.engine.discovery import discover
from salvage.safety import restoring
from salvage.safety.record import Record

log = logging.getLogger("salvage")


@dataclass
class Outcome:
    """One row of the summary."""

    volume: str
    snapshot: str = "-"
    time: str = "-"
    result: str = ""
    ok: bool = True


def pick_tide(config: Config, tide: Optional[str]) -> Tide:
    if tide:
        if tide not in config.tides:
            raise RestoreError(f'no tide named "{tide}" in {config.path}')
        return config.tides[tide]
    if len(config.tides) == 1:
        return next(iter(config.tides.values()))
    raise RestoreError(
        f"which tide's crane holds the snapshots? choose with --tide"
        f" ({', '.join(sorted(config.tides))})"
    )


def restore_all(
    engine: Engine,
    config: Config,
    machine: str,
    tide: Optional[str] = None,
    before: Optional[datetime] = None,
    dry_run: bool = False,
    force: bool = False,
    trust_meta: bool = False,
) -> List[Outcome]:
    call = Call.new(config, pick_tide(config, tide), machine)
    try:
        check_secrets(call.crane)
        ensure_image(engine, call.crane)
    except Exception as error:
        raise RestoreError(describe(error)) from None
    names = machine_volumes(engine, call)
    if not names:
        raise RestoreError(f'crane "{call.crane.name}" has no snapshots of machine {machine}')
    log.info(
        "machine %s: %d volume(s) in crane %s: %s",
        machine,
        len(names),
        call.crane.name,
        ", ".join(names),
    )
    done = []
    for number, volume in enumerate(names, 1):
        step = f"[{number}/{len(names)}] volume {volume}"
        outcome = Outcome(volume)
        try:
            _one(engine, config, call, volume, outcome, step, before, dry_run, force, trust_meta)
        except RestoreError as error:
            outcome.result, outcome.ok = f"failed: {error}", False
        log.info("%s: %s", step, outcome.result)
        done.append(outcome)
    return done


def _one(
    engine: Engine,
    config: Config,
    call: Call,
    volume: str,
    outcome: Outcome,
    step: str,
    before: Optional[datetime],
    dry_run: bool,
    force: bool,
    trust_meta: bool,
) -> None:
    machine = call.machine
    unfinished = restoring.of(Record(config.state_directory).entries(), volume)
    exists = volume in discover(engine).volumes
    ours = False
    if exists and not unfinished:
        found = engine.api.inspect_volume(volume).get("Labels") or {}
        ours = found.get(labels.RESTORED) == f"{machine}/{volume}"
        try:
            empty = volumes.is_empty(engine, call.crane.image, volume, call.labels(volume))
        except volumes.HelperFailed as error:
            raise RestoreError(str(error)) from None
        if ours and not empty:
            outcome.result = "already restored: left alone"
            return
        if not ours and not force:
            outcome.result, outcome.ok = "exists: not touched (--force restores over it)", False
            return
    chosen = _chosen(engine, call, volume, unfinished.prior if unfinished else None, before)
    outcome.snapshot, outcome.time = chosen.id, chosen.time
    if unfinished:
        doing = "finishing the interrupted restore"
    elif ours:
        doing = "filling the volume an interrupted run created"
    elif exists:
        doing = "restoring over the existing volume (a safety backup of it first)"
    else:
        doing = "creating and restoring it"
    if dry_run:
        outcome.result = (
            f"would be {doing}"
            if exists
            else f"would be {_dry(engine, call, volume, chosen, trust_meta)}"
        )
        return
    log.info("%s: %s from snapshot %s (%s)", step, doing, chosen.id, chosen.time)
    problems = restore(
        engine,
        config,
        volume,
        None if unfinished else chosen.id,
        tide=call.tide.name,
        force=force and exists and not ours,
        trust_meta=trust_meta,
        machine=machine,
        marked=True,
    )
    if problems:
        outcome.result, outcome.ok = f"failed: {problems[0]}", False
    else:
        outcome.result = "finished" if unfinished or ours else "restored"


def _chosen(
    engine: Engine, call: Call, volume: str, wanted: Optional[str], before: Optional[datetime]
) -> Snapshot:
    return choose(call.crane.name, volume, snapshots(engine, call, volume), wanted, before)


def _dry(engine: Engine, call: Call, volume: str, chosen: Snapshot, trust: bool) -> str:
    """The volume the real run would create, in words (the crane reads its metadata)."""
    code, output = call.run(engine, "meta", volume, snapshot=chosen.id)
    try:
        meta = json.loads(output)
    except ValueError:
        meta = None
    if code != 0 or not isinstance(meta, dict):
        raise RestoreError(f'crane "{call.crane.name}" gave no metadata for snapshot {chosen.id}')
    driver, options, tags = volume_spec(meta, volume, True, trust)
    tags[labels.RESTORED] = f"{call.machine}/{volume}"
    shown = ", ".join(f"{k}={v}" for k, v in sorted(tags.items()))
    return f"created: driver {driver}, options {_options(options)}, labels {shown}"


def table(outcomes: List[Outcome]) -> str:
    rows = [("VOLUME", "SNAPSHOT", "TAKEN", "RESULT")]
    rows += [(o.volume, o.snapshot, o.time[:19], o.result) for o in outcomes]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths)) + "  " + row[3]
        for row in rows
    )
