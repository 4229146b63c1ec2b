"""`salvage status`: per tide its last run, that run's result and the next run; per volume
its last good backup and how old it is, flagged as overdue when older than the tide's
schedule allows; a restore that was interrupted while replacing a volume's content."""

from __future__ import annotations

import time
from typing import Callable, List, Optional

from salvage.core.humanize import age, count, moment, size
from salvage.report.history import History
from salvage.safety import restoring
from salvage.safety.record import Record, RecordUnreadable
from salvage.systemd import schedule
from salvage.terminal import Paint

# A run takes a while and a timer fires a little late: a volume is overdue once its last
# good backup is older than the interval, its randomized delay and a tenth more.
GRACE = 0.1


def report(
    config,
    now: Optional[float] = None,
    next_run: Callable[[str], Optional[float]] = schedule.next_run,
) -> List[dict]:
    now = time.time() if now is None else now
    history = History(config.state_directory)
    try:
        restores = restoring.report(Record(config.state_directory).entries())
    except RecordUnreadable:  # not root: the history says what it can, or why it cannot
        restores = []
    tides = []
    for name in sorted(config.tides):
        tide = config.tides[name]
        every = schedule.interval(tide.schedule)
        limit = every * (1 + GRACE) + tide.randomized_delay
        volumes = []
        for volume in history.volumes(name):
            success, last = volume["last_success"], volume["last"]
            since = now - success["ended"] if success else None
            volumes.append(
                {
                    "volume": volume["volume"],
                    "last_success": success["ended"] if success else None,
                    "age": since,
                    "overdue": since is None or since > limit,
                    "last_ok": last["ok"],
                    "last_error": last["error"],
                    "last_run_id": last["run_id"],
                    # What the crane reported for the last good backup (None: it did not).
                    "size": success["size"] if success else None,
                    "bytes_read": success["bytes_read"] if success else None,
                    "files": success["files"] if success else None,
                    "snapshot": success["snapshot"] if success else None,
                    "shrunk": last["shrunk"],
                    "verified": history.last_verify(name, volume["volume"]),
                }
            )
        runs = history.runs([name], limit=1)
        tides.append(
            {
                "tide": name,
                "schedule": tide.schedule,
                "interval": every,
                "overdue_after": round(limit, 3),
                "next_run": next_run(name),
                "last_run": runs[0] if runs else None,
                "volumes": volumes,
                "interrupted_restores": [r for r in restores if r["tide"] == name],
            }
        )
    return tides


def healthy(tides: List[dict]) -> bool:
    """Every tide's last run succeeded (or still runs), no volume is overdue, and none
    failed its last `salvage verify`."""
    return all(
        tide["last_run"] is not None
        and tide["last_run"]["result"] in ("success", "running")
        and not any(volume["overdue"] for volume in tide["volumes"])
        and all((volume.get("verified") or {}).get("ok", True) for volume in tide["volumes"])
        and not tide.get("interrupted_restores")
        for tide in tides
    )


def _result(run: dict, paint: Paint) -> str:
    if run["result"] == "running":
        return paint("running", "yellow")
    if run["result"] == "unfinished":
        return paint("unfinished (the run died)", "red", "bold")
    failed = [v for v in run["volumes"] if not v["ok"]]
    counts = (
        f"{len(run['volumes']) - len(failed)} of {count(len(run['volumes']), 'volume')} backed up"
    )
    if run["result"] == "success":
        return paint("success", "green") + f", {counts}"
    why = [f"interrupted ({run['interrupted']})"] if run["interrupted"] else []
    why += [counts] + run["problems"][:1]
    return paint("failure", "red", "bold") + ", " + "; ".join(why)


def _verified(verified: Optional[dict], now: float):
    """The last `salvage verify` of a volume: "-", "3 h ago", or "FAILED 3 h ago"."""
    if not verified:
        return "-"
    when = f"{age(now - verified['ended'])} ago"
    return when if verified["ok"] else (f"FAILED {when}", "red")


def render(tides: List[dict], paint: Paint, now: Optional[float] = None) -> str:
    now = time.time() if now is None else now
    lines = []
    for tide in tides:
        run, upcoming = tide["last_run"], tide["next_run"]
        if run is None:
            last = paint("no run recorded", "yellow")
        else:
            last = (
                f"{moment(run['started'])} ({age(now - run['started'])} ago): {_result(run, paint)}"
            )
        scheduled = (
            f"{moment(upcoming)} (in {age(upcoming - now)})" if upcoming else "not scheduled"
        )
        lines.append(paint(f"tide {tide['tide']}", "bold") + f" (every {age(tide['interval'])})")
        lines.append(f"  last run: {last}")
        lines.append(f"  next run: {scheduled}")
        for restore in tide.get("interrupted_restores", []):
            stopped = ", ".join(restore["stopped"]) or "no container"
            lines.append(
                "  "
                + paint("restore interrupted", "red", "bold")
                + f": volume {restore['volume']} is half restored, {stopped} held"
                f" stopped; finish it with `{restore['finish']}`"
            )
        overdue = (f"OVERDUE (expected every {age(tide['interval'])})", "red")
        rows = []
        for volume in tide["volumes"]:
            ok = volume["last_ok"]
            rows.append(
                [
                    volume["volume"],
                    moment(volume["last_success"]),
                    age(volume["age"]) if volume["age"] is not None else "-",
                    size(volume.get("size")),
                    _verified(volume.get("verified"), now),
                    ("ok", "green") if ok else (f"failed: {volume['last_error']}", "red"),
                    overdue
                    if volume["overdue"]
                    else ("SHRUNK", "yellow")
                    if volume.get("shrunk")
                    else "",
                ]
            )
        if rows:
            header = ["volume", "last success", "age", "size", "verified", "last backup", ""]
            table = paint.table(header, rows)
            lines += [f"  {line}" for line in table]
    return "\n".join(lines)
