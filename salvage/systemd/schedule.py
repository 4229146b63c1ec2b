"""When a tide is expected to run: its interval, from its `schedule` (a systemd calendar
expression), and its next run, from its systemd timer `salvage@<tide>.timer` (named here,
for the generator that writes it too).

systemd's own tools answer both; without them a tide is taken to run daily, and its next
run is unknown ("not scheduled").
"""

from __future__ import annotations

import os
import re
import string
import subprocess
from calendar import timegm
from time import strptime
from typing import List, Optional

DAY = 86400.0
DEFAULT_INTERVAL = DAY  # the default tide is `daily`
# systemd.time(7)'s shorthands, so the common cases need no subprocess.
SHORTHANDS = {
    "minutely": 60.0,
    "hourly": 3600.0,
    "daily": DAY,
    "weekly": 7 * DAY,
    "monthly": 31 * DAY,
    "quarterly": 92 * DAY,
    "semiannually": 184 * DAY,
    "semi-annually": 184 * DAY,
    "yearly": 366 * DAY,
    "annually": 366 * DAY,
}
_TIME = re.compile(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC")
_PLAIN = frozenset(string.ascii_letters + string.digits + ":_.")


def escape(text: str) -> str:
    """An instance name, as `systemd-escape` makes it: "/" becomes "-", and every byte of
    the UTF-8 text outside [A-Za-z0-9:_.] (and a leading ".") becomes \\xNN."""
    out = []
    for index, byte in enumerate(text.encode("utf-8")):
        char = chr(byte)
        if char == "/":
            out.append("-")
        elif char in _PLAIN and not (index == 0 and char == "."):
            out.append(char)
        else:
            out.append(f"\\x{byte:02x}")
    return "".join(out)


def timer(tide: str, kind: str = "salvage") -> str:
    return f"{kind}@{escape(tide)}.timer"


def _utc(text: str) -> Optional[float]:
    """Epoch seconds from a systemd timestamp printed under TZ=UTC, e.g.
    "Fri 2026-11-27 03:00:00 UTC"."""
    match = _TIME.search(text)
    return float(timegm(strptime(match.group(1), "%Y-%m-%d %H:%M:%S"))) if match else None


def _systemd(*args: str) -> Optional[str]:
    try:
        done = subprocess.run(
            args, capture_output=True, text=True, timeout=10, env=dict(os.environ, TZ="UTC")
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def interval(schedule: Optional[str]) -> float:
    """Seconds between two runs; for an irregular expression ("Mon,Fri 03:00") the longest
    gap, so that a volume is not called late between the two close runs."""
    if not schedule:
        return DEFAULT_INTERVAL
    if schedule.strip().lower() in SHORTHANDS:
        return SHORTHANDS[schedule.strip().lower()]
    out = _systemd("systemd-analyze", "calendar", "--iterations=8", schedule) or ""
    times: List[float] = [t for t in map(_utc, out.splitlines()) if t is not None]
    gaps = [later - earlier for earlier, later in zip(times, times[1:])]
    return max(gaps) if gaps else DEFAULT_INTERVAL


def next_run(tide: str) -> Optional[float]:
    """When the tide's timer fires next; None without systemd, or without an active timer."""
    out = _systemd("systemctl", "show", timer(tide), "--property=NextElapseUSecRealtime", "--value")
    return _utc(out) if out else None
