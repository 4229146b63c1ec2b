"""A restore in progress, in the record (salvage.safety.record): written before the target's
content starts to be replaced, cleared once the copy is complete.

While it is there the target is half-restored: `salvage recover` (and every run's own
recovery) leaves the containers that restore stopped down, rather than starting an app on
half its data; no run backs it up (with retention, that backup could remove the very
snapshot being restored); `salvage status` shows it; the same restore run again finishes
it and brings them back.
"""

from __future__ import annotations

import time
from typing import Dict, List, Optional

from salvage.safety.record import Entry

CHANGE = "restore"


def entry(target: str, source: str, snapshot: str, run_id: str, tide: str) -> Entry:
    """`prior` holds the snapshot, `command` the volume it is a snapshot of."""
    return Entry(
        f"volume:{target}", target, CHANGE, snapshot, time.time(), run_id, tide, command=source
    )


def interrupted(entries: List[Entry]) -> Dict[str, Entry]:
    """The restores in progress, by run id."""
    return {e.run_id: e for e in entries if e.change == CHANGE}


def of(entries: List[Entry], volume: str) -> Optional[Entry]:
    """The interrupted restore of `volume`, if there is one."""
    return next((e for e in entries if e.change == CHANGE and e.name == volume), None)


def held(entries: List[Entry], restore: Entry) -> List[Entry]:
    """The containers that restore stopped (they stay down until it is finished)."""
    return [e for e in entries if e.run_id == restore.run_id and e.change != CHANGE]


def command(restore: Entry) -> str:
    to = "" if restore.name == restore.command else f" --to {restore.name}"
    return f"salvage restore {restore.command}{to} --snapshot {restore.prior}"


def explain(restore: Entry, users: List[str]) -> str:
    return (
        f"a restore of snapshot {restore.prior} was interrupted while replacing its content:"
        f" {'its users ' + ', '.join(users) + ' stay' if users else 'nothing is'} stopped"
        f" until `{command(restore)}` finishes it"
    )


def report(entries: List[Entry]) -> List[dict]:
    """For `salvage status`: each interrupted restore, what it keeps stopped, what to run."""
    return [
        {
            "volume": r.name,
            "snapshot": r.prior,
            "of": r.command,
            "tide": r.tide,
            "run_id": r.run_id,
            "since": r.since,
            "stopped": [e.name for e in held(entries, r)],
            "finish": command(r),
        }
        for r in interrupted(entries).values()
    ]
