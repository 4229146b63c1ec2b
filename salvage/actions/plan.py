"""`salvage plan`: what a run would do, changing nothing."""

from __future__ import annotations

from typing import List

from salvage.planning import Plan

NOTE = {"none": "left as it is", "ignore": "keeps running"}


def render(plans: List[Plan]) -> str:
    """A readable tree of the plans."""
    lines = []
    for plan in plans:
        data = plan.as_dict()
        lines.append(
            f"tide {plan.tide.name}: crane {plan.crane.name} ({plan.crane.image}),"
            f" grouping {plan.tide.grouping}, {data['max_concurrent']} crane(s) at a time"
        )
        if not plan.groups:
            lines.append(f"  no volume is labelled salvage.tide.{plan.tide.name}")
        for number, group in enumerate(data["groups"], 1):
            lines.append(f"  group {number}/{len(plan.groups)} {group['name']}")
            lines.append(f"    volumes: {', '.join(group['volumes'])}")
            way = group["staging"]
            lines.append(f"    staging: {way['way']} ({way['why']})")
            for step in group["containers"]:
                what = step["action"] + (
                    f" ({NOTE[step['action']]})" if step["action"] in NOTE else ""
                )
                lines.append(f"    {step['container']} [{step['state']}]: {what}")
                for which in ("pre", "post"):
                    if step[which]:
                        user = f" as {step['user']}" if step["user"] else ""
                        lines.append(f"      {which}-command{user}: {step[which]}")
            for problem in group["problems"]:
                lines.append(f"    not backed up: {problem}")
        for problem in data["problems"]:
            lines.append(f"  problem: {problem}")
    return "\n".join(lines)
