"""`salvage plan`: what a run would do, changing nothing."""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple

from salvage.core.dumps import Dump
from salvage.core.model import Problem
from salvage.core.planning import Plan

NOTE = {"none": "left as it is", "ignore": "keeps running"}


Dumps = Dict[str, Tuple[List[Dump], List[Problem]]]


def dump_dicts(plan: Plan, dumps: List[Dump]) -> List[dict]:
    """The tide's dumps, and whether each database's own volumes are also backed up cold."""
    cold = {volume for group in plan.groups for volume in group.volumes}
    return [
        {
            **dump.as_dict(),
            "cold_volumes": [v for v in dump.container.volumes if v in cold],
            "left_out": [v for v in dump.container.volumes if v not in cold],
        }
        for dump in dumps
    ]


def _dump_lines(plan: Plan, dumps: List[Dump]) -> List[str]:
    lines = []
    for dump in dump_dicts(plan, dumps):
        running = "keeps running (docker exec)" if dump["state"] == "running" else "NOT running"
        lines.append(
            f"  dump {dump['name']}: {dump['kind']} in {dump['container']}"
            f" [{dump['state']}]: {running}"
        )
        for volume in dump["left_out"]:
            lines.append(f"    its volume {volume}: left out (dumped instead)")
        for volume in dump["cold_volumes"]:
            lines.append(f"    its volume {volume}: also backed up cold (its group stops it)")
    return lines


def render(plans: List[Plan], dumps: Optional[Dumps] = None) -> str:
    """A readable tree of the plans."""
    lines = []
    for plan in plans:
        taken, dump_problems = (dumps or {}).get(plan.tide.name, ([], []))
        data = plan.as_dict()
        lines.append(
            f"tide {plan.tide.name}: crane {plan.crane.name} ({plan.crane.image}),"
            f" select {plan.tide.select}, grouping {plan.tide.grouping},"
            f" {data['max_concurrent']} crane(s) at a time"
        )
        lines += _dump_lines(plan, taken)
        if not plan.groups and not plan.choices and not taken:
            lines.append(f"  no volume is labelled salvage.tide.{plan.tide.name}")
        if plan.choices:  # why each volume is in or out
            lines.append("  selection:")
            lines += [f"    {choice}" for choice in plan.choices]
        for number, group in enumerate(data["groups"], 1):
            lines.append(f"  group {number}/{len(plan.groups)} {group['name']}")
            lines.append(f"    volumes: {', '.join(group['volumes'])}")
            if group["order_unknown"]:
                why = group["order_unknown"]
                lines.append(f"    order unknown ({why}): one container at a time")
            way = group["staging"]
            lines.append(f"    staging: {way['way']} ({way['why']})")
            for step in group["containers"]:
                what = step["action"] + (
                    f" ({NOTE[step['action']]})" if step["action"] in NOTE else ""
                )
                lines.append(f"    {step['container']} [{step['state']}]: {what}")
                if step["depends_on"]:
                    lines.append(f"      after: {', '.join(step['depends_on'])} (depends_on)")
                for which in ("pre", "post"):
                    if step[which]:
                        user = f" as {step['user']}" if step["user"] else ""
                        lines.append(f"      {which}-command{user}: {step[which]}")
            for problem in group["problems"]:
                lines.append(f"    not backed up: {problem}")
        for problem in [*data["problems"], *map(str, dump_problems)]:
            lines.append(f"  problem: {problem}")
    return "\n".join(lines)
