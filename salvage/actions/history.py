"""`salvage history`: the recorded runs, newest first, each with its volumes."""

from __future__ import annotations

from typing import List

from salvage.core.humanize import duration, moment, size
from salvage.terminal import Paint

RESULT_STYLE = {"success": "green", "failure": "red", "unfinished": "red", "running": "yellow"}


def render(runs: List[dict], paint: Paint) -> str:
    if not runs:
        return "no run recorded"
    lines = []
    for run in runs:
        took = f"took {duration(run['seconds'])}" if run["seconds"] is not None else "not ended"
        interrupted = f", interrupted ({run['interrupted']})" if run["interrupted"] else ""
        lines.append(
            f"{moment(run['started'])}  {paint(run['tide'], 'bold')}  "
            f"{paint(run['result'], RESULT_STYLE.get(run['result'], 'bold'))}{interrupted}:"
            f" {took}, containers down {duration(run['downtime'])}"
            f" ({run['trigger']}, run {run['run_id'][:12]})"
        )
        rows = [
            [
                volume["volume"],
                ("ok", "green") if volume["ok"] else ("failed", "red"),
                duration(volume["seconds"]),
                duration(volume["downtime"]),
                "" if volume["exit_code"] is None else str(volume["exit_code"]),
                size(volume.get("size")),
                volume["error"] or volume.get("shrunk") or "",
            ]
            for volume in run["volumes"]
        ]
        if rows:
            table = paint.table(["volume", "result", "took", "down", "exit", "stored", ""], rows)
            lines += [f"  {line}" for line in table]
        lines += [f"  problem: {problem}" for problem in run["problems"]]
    return "\n".join(lines)
