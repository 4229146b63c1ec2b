"""A backup much smaller than the previous good one (the tide's `shrink_alert`): a volume
emptied by mistake or by an attack still backs up "successfully", so say it loudly.

Compares the bytes the crane read from the volume, or, when a crane reports only what it
stored, the bytes stored; a crane that reports neither is never compared.
"""

from __future__ import annotations

import logging
from typing import Optional

from salvage.report.history import History, HistoryError

log = logging.getLogger("salvage")


def measure(row) -> Optional[tuple]:
    """(what is compared, its value) of a backup: a history row or a VolumeResult."""
    get = row.get if isinstance(row, dict) else lambda key: getattr(row, key, None)
    for key, what in (("bytes_read", "bytes read"), ("size", "bytes stored")):
        if get(key) is not None:
            return what, get(key)
    return None


def why(previous, current, fraction: float) -> Optional[str]:
    """Why `current` is a shrink below `fraction` of `previous`, in words; else None."""
    before, now = measure(previous) if previous else None, measure(current)
    if before is None or now is None or before[0] != now[0] or before[1] <= 0:
        return None
    if now[1] >= fraction * before[1]:
        return None
    return (
        f"shrank to {now[1]} {now[0]} from {before[1]} in the previous good backup"
        f" ({now[1] / before[1]:.0%}, below shrink_alert {fraction:g})"
    )


def check(state_directory: str, tide: str, result, fraction: Optional[float]) -> Optional[str]:
    """The shrink warning for a good backup's result, logged; None when there is none."""
    if fraction is None or not result.ok:
        return None
    try:
        previous = History(state_directory).last_good(tide, result.volume)
    except HistoryError as error:
        log.warning("volume %s: not compared with its previous backup: %s", result.volume, error)
        return None
    shrunk = why(previous, result, fraction)
    if shrunk:
        log.warning("volume %s: backup %s", result.volume, shrunk)
    return shrunk
