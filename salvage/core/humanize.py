"""Times and durations as people read them: one wording for the terminal and the messages."""

from __future__ import annotations

import time
from typing import Optional


def count(number: int, thing: str) -> str:
    """ "1 volume", "2 volumes"."""
    return f"{number} {thing}{'s' * (number != 1)}"


def duration(seconds: float) -> str:
    """ "0.4 s", "12.3 s", "4 min 3 s", "2 h 5 min", "3 d 4 h"."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = int(round(seconds))
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s"
    if whole < 86400:
        return f"{whole // 3600} h {whole % 3600 // 60} min"
    return f"{whole // 86400} d {whole % 86400 // 3600} h"


def age(seconds: float) -> str:
    """How long ago, to the unit that matters: "40 s", "12 min", "5 h", "3 d"."""
    seconds = max(0.0, seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit}"
    return f"{int(seconds)} s"


def moment(epoch: Optional[float]) -> str:
    """A local date and time, or "never"."""
    if not epoch:
        return "never"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))


def size(number: Optional[int]) -> str:
    """Bytes: "812 B", "47.1 KiB", "3.2 GiB"; "-" when unknown."""
    if number is None:
        return "-"
    value, unit = float(number), "B"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if value < 1024 or unit == "PiB":
            break
        value /= 1024
    return f"{number} B" if unit == "B" else f"{value:.1f} {unit}"
