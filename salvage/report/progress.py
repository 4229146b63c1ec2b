"""`salvage run` on a terminal: each group and volume as it finishes, counted, and a table
of the tide's volumes at the end. The log's lines go on as they are; this adds the
overview a person watching wants."""

from __future__ import annotations

import sys
import time
from typing import Dict, Tuple

from salvage.core.humanize import count, duration
from salvage.report.observers import Observer
from salvage.terminal import Paint


class Progress(Observer):
    def __init__(self, stream=None) -> None:
        self.stream = stream or sys.stderr
        self.paint = Paint(self.stream)
        self.total = self.done = 0
        self.groups: Dict[str, Tuple[str, float]] = {}  # name -> ("2/5", when it started)

    def _say(self, line: str, *styles: str) -> None:
        print(self.paint(line, *styles), file=self.stream, flush=True)

    def tide_started(self, run, plan) -> None:
        self.total = sum(len(group.volumes) for group in plan.groups)
        self.done = 0
        groups = count(len(plan.groups), "group")
        self._say(f"tide {run.tide.name}: {count(self.total, 'volume')} in {groups}", "bold")

    def group_started(self, run, number, total, group) -> None:
        self.groups[group.name] = (f"{number}/{total}", time.monotonic())

    def group_done(self, run, group, downtime) -> None:
        number, started = self.groups.get(group.name, ("", time.monotonic()))
        down = f", containers down {duration(downtime)}" if downtime else ""
        took = duration(time.monotonic() - started)
        self._say(f"group {number} {group.name}: done in {took}{down}", "bold")

    def volume_done(self, run, result) -> None:
        self.done += 1
        where = f"volume {self.done}/{self.total} {result.volume}"
        if result.ok:
            mark = self.paint(self.paint.ok, "green")
            self._say(f"  {mark} {where}: backed up in {duration(result.seconds)}")
        else:
            mark = self.paint(self.paint.failed, "red", "bold")
            self._say(f"  {mark} {where}: {self.paint(result.message, 'red')}")

    def tide_done(self, run, result) -> None:
        if result.volumes:
            rows = [
                [
                    v.volume,
                    v.group,
                    ("ok", "green") if v.ok else ("failed", "red"),
                    duration(v.seconds),
                    duration(v.downtime),
                    v.message,
                ]
                for v in result.volumes
            ]
            self._say("")
            for line in self.paint.table(["volume", "group", "result", "took", "down", ""], rows):
                self._say(line)
        failed = len(result.failed)
        if not result.ok:
            what = (
                f"{failed} of {count(len(result.volumes), 'volume')} failed" if failed else "failed"
            )
            self._say(f"{self.paint.failed} tide {result.tide}: {what}", "red", "bold")
        elif result.volumes:
            self._say(
                f"{self.paint.ok} tide {result.tide}: every volume backed up", "green", "bold"
            )
        else:
            self._say(f"tide {result.tide}: no volume to back up", "bold")
