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
            f" select {plan.tide.select}, grouping {plan.tide.grouping},"
            f" {data['max_concurrent']} crane(s) at a time"
        )
        if not plan.groups and not plan.choices:
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
        for problem in data["problems"]:
            lines.append(f"  problem: {problem}")
    return "\n".join(lines)
