"""From a snapshot of the host and the configuration to a plan for one tide (pure).

A plan says, for a tide: its groups in the order they run; per group, the volumes and the
containers in the order they are put into their safe states (the reverse order brings them
back); and the problems that fail a volume or a whole group before anything is touched.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Set, Tuple

from salvage.config.schema import Config, Crane, Tide
from salvage.core import grouping, labels, ordering, selection
from salvage.core.labels import Settings
from salvage.core.model import LIVE, ComposeFiles, Container, Host, Problem
from salvage.core.ordering import Order
from salvage.core.selection import BindSource, Choice


def effective_action(action: str, state: str) -> str:
    """What happens to a container in `state`: only a live one (running, or restarting
    between two runs) is changed. A stopped or paused container is left exactly as it is
    (`none`), and watched: one started during the backup fails its group.
    """
    return action if state in LIVE else "none"


@dataclass(frozen=True)
class Step:
    container: Container
    settings: Settings

    @property
    def action(self) -> str:
        return effective_action(self.settings.action, self.container.state)

    def as_dict(
        self, names: Optional[Mapping[str, str]] = None, order: Optional[Order] = None
    ) -> Dict[str, Any]:
        running = self.container.state == "running"
        after = (order.after if order else {}).get(self.container.id, ())
        return {
            "container": self.container.name,
            "id": self.container.id,
            "state": self.container.state,
            "action": self.action,
            "pre": self.settings.pre if running else None,
            "post": self.settings.post if running else None,
            "user": self.settings.user,
            "depends_on": [(names or {}).get(i, i) for i in after],
        }


@dataclass(frozen=True)
class Group:
    name: str
    volumes: Tuple[str, ...]
    steps: Tuple[Step, ...]  # in stop order; reversed to restore
    problems: Tuple[Problem, ...] = ()  # any problem fails the group untouched
    order: Order = Order()  # which containers wait for which; unrelated ones go at once

    def as_dict(self) -> Dict[str, Any]:
        names = {step.container.id: step.container.name for step in self.steps}
        return {
            "name": self.name,
            "volumes": list(self.volumes),
            "containers": [step.as_dict(names, self.order) for step in self.steps],
            "order_unknown": self.order.unknown or None,
            "problems": [str(p) for p in self.problems],
        }


@dataclass(frozen=True)
class Plan:
    tide: Tide
    crane: Crane
    groups: Tuple[Group, ...]
    problems: Tuple[Problem, ...] = ()  # volume references that name no volume, bad labels
    choices: Tuple[Choice, ...] = ()  # every volume considered, in or out, and why
    binds: Mapping[str, BindSource] = field(default_factory=dict)  # bind mounts backed up

    def as_dict(self) -> Dict[str, Any]:
        return {
            "tide": self.tide.name,
            "crane": self.crane.name,
            "image": self.crane.image,
            "grouping": self.tide.grouping,
            "max_concurrent": min(self.tide.max_concurrent, self.crane.max_concurrent),
            "select": self.tide.select,
            "selection": [choice.as_dict() for choice in self.choices],
            "groups": [self._with_staging(group.as_dict()) for group in self.groups],
            "problems": [str(p) for p in self.problems],
        }

    def _with_staging(self, group: Dict[str, Any]) -> Dict[str, Any]:
        down = any(step["action"] in ("stop", "pause") for step in group["containers"])
        way, why = staging_way(self.tide.staging, down)
        return {**group, "staging": {"way": way, "why": why}}


def staging_way(mode: str, takes_down: bool) -> Tuple[str, str]:
    """How `plan` says a group goes: (way, why). The run decides for real (log line)."""
    if mode == "never":
        return "classic", "staging = never"
    if not takes_down:
        return "classic", "no container goes down"
    if mode == "always":
        return "staged", "staging = always"
    return (
        "staged if it fits",
        "staging = auto: classic if the stage does not fit or the image has no GNU cp",
    )


def stop_order(
    containers: Sequence[Container], files: Optional[Mapping[str, ComposeFiles]] = None
) -> List[Container]:
    """Dependents before their dependencies (Compose's depends_on), otherwise by name.

    Restoring in the reverse order then starts dependencies first, as Compose would. Which
    of them may go at once is `ordering.dependencies`' to say."""
    by_name = sorted(containers, key=lambda c: c.name)
    dependents = ordering.dependencies(by_name, files).dependents()
    order: List[Container] = []
    done: Set[str] = set()
    while len(order) < len(by_name):
        ready = [c for c in by_name if c.id not in done and dependents.get(c.id, set()) <= done]
        # A dependency cycle: fall back to name order for what is left.
        nxt = ready[0] if ready else next(c for c in by_name if c.id not in done)
        order.append(nxt)
        done.add(nxt.id)
    return order


def _group_name(volumes: Sequence[str], containers: Sequence[Container]) -> str:
    projects = {c.project for c in containers}
    project = projects.pop() if len(projects) == 1 else None
    return project or volumes[0]


def tide_volumes(host: Host, tide: Tide) -> Tuple[List[str], List[Problem]]:
    """The names of what `tide` backs up (volumes, bind mounts), and the labels that fail."""
    chosen = selection.select(host, tide)
    return chosen.names, chosen.problems


def auto_remove_problem(container: Container, settings: Settings) -> Optional[Problem]:
    """A `--rm` container would be deleted by a stop: only pause or ignore can back it up."""
    if container.auto_remove and settings.action == "stop" and container.live:
        return Problem(
            f'container "{container.name}"',
            "was started with --rm (AutoRemove), so stopping it would delete it: not stopped;"
            f" set {labels.ACTION}=pause or ignore",
        )
    return None


def plan_tide(host: Host, config: Config, tide_name: str) -> Plan:
    tide = config.tides[tide_name]
    chosen = selection.select(host, tide)
    by_id = {c.id: c for c in host.containers}
    shapes = grouping.group(
        chosen.names,
        selection.mounts(host),
        {c.id: c.project for c in host.containers},
        tide.grouping,
    )
    groups = []
    for shape in shapes:
        members = stop_order([by_id[i] for i in shape.containers], host.compose_files)
        steps, group_problems = [], []
        for container in members:
            settings, bad = labels.parse_settings(container)
            steps.append(Step(container, settings))
            group_problems += bad + [p for p in [auto_remove_problem(container, settings)] if p]
        vols = tuple(sorted(shape.volumes))
        order = ordering.dependencies(members, host.compose_files)
        groups.append(
            Group(_group_name(vols, members), vols, tuple(steps), tuple(group_problems), order)
        )
    return Plan(
        tide,
        config.crane_of(tide),
        tuple(groups),
        tuple(chosen.problems),
        tuple(chosen.choices),
        chosen.binds,
    )


def check_host(host: Host, config: Config) -> List[Problem]:
    """Every problem with the labels on this host, for every tide (for `salvage check`)."""
    plans = [plan_tide(host, config, tide) for tide in config.tides]
    failing = [p for plan in plans for p in plan.problems]  # references that fail
    problems: List[Problem] = []
    for container in host.containers:
        refs, label_problems = labels.tide_refs(container)
        problems += label_problems
        for tide in refs:
            label = labels.where(container, labels.TIDE_PREFIX + tide)
            if tide not in config.tides:
                problems.append(Problem(label, f'no tide named "{tide}" in {config.path}'))
            problems += [p for p in failing if p.where == label]
        problems += labels.parse_settings(container)[1]
    # What only a plan shows: a --rm container a tide would stop, a bind name clash.
    problems += failing + [p for plan in plans for g in plan.groups for p in g.problems]
    return list(dict.fromkeys(problems))
