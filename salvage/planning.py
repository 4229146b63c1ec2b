"""From a snapshot of the host and the configuration to a plan for one tide (pure).

A plan says, for a tide: its groups in the order they run; per group, the volumes and the
containers in the order they are put into their safe states (the reverse order brings them
back); and the problems that fail a volume or a whole group before anything is touched.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

from salvage import grouping, labels, staging
from salvage.config import Config, Crane, Tide
from salvage.labels import Settings
from salvage.model import LIVE, Container, Host, Problem


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

    def as_dict(self) -> dict:
        running = self.container.state == "running"
        return {
            "container": self.container.name,
            "id": self.container.id,
            "state": self.container.state,
            "action": self.action,
            "pre": self.settings.pre if running else None,
            "post": self.settings.post if running else None,
            "user": self.settings.user,
        }


@dataclass(frozen=True)
class Group:
    name: str
    volumes: Tuple[str, ...]
    steps: Tuple[Step, ...]  # in stop order; reversed to restore
    problems: Tuple[Problem, ...] = ()  # any problem fails the group untouched

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "volumes": list(self.volumes),
            "containers": [step.as_dict() for step in self.steps],
            "problems": [str(p) for p in self.problems],
        }


@dataclass(frozen=True)
class Plan:
    tide: Tide
    crane: Crane
    groups: Tuple[Group, ...]
    problems: Tuple[Problem, ...] = ()  # volume references that name no volume, bad labels

    def as_dict(self) -> dict:
        return {
            "tide": self.tide.name,
            "crane": self.crane.name,
            "image": self.crane.image,
            "grouping": self.tide.grouping,
            "max_concurrent": min(self.tide.max_concurrent, self.crane.max_concurrent),
            "groups": [self._with_staging(group.as_dict()) for group in self.groups],
            "problems": [str(p) for p in self.problems],
        }

    def _with_staging(self, group: dict) -> dict:
        down = any(step["action"] in ("stop", "pause") for step in group["containers"])
        way, why = staging.planned(self.tide.staging, down)
        return {**group, "staging": {"way": way, "why": why}}


def stop_order(containers: Sequence[Container]) -> List[Container]:
    """Dependents before their dependencies (Compose's depends_on), otherwise by name.

    Restoring in the reverse order then starts dependencies first, as Compose would.
    """
    by_name = sorted(containers, key=lambda c: c.name)
    providers: Dict[Tuple[str, str], List[Container]] = {}
    for c in by_name:
        if c.project and c.service:
            providers.setdefault((c.project, c.service), []).append(c)
    # waits[x] = the dependents that must stop before x
    waits: Dict[str, set] = {c.id: set() for c in by_name}
    for c in by_name:
        for service in c.depends_on:
            for provider in providers.get((c.project, service), []):
                if provider.id != c.id:
                    waits[provider.id].add(c.id)
    order: List[Container] = []
    done: set = set()
    while len(order) < len(by_name):
        ready = [c for c in by_name if c.id not in done and waits[c.id] <= done]
        # A dependency cycle: fall back to name order for what is left.
        nxt = ready[0] if ready else next(c for c in by_name if c.id not in done)
        order.append(nxt)
        done.add(nxt.id)
    return order


def _group_name(volumes: Sequence[str], containers: Sequence[Container]) -> str:
    projects = {c.project for c in containers}
    if len(projects) == 1 and None not in projects:
        return projects.pop()
    return volumes[0]


def tide_volumes(host: Host, tide: str) -> Tuple[List[str], List[Problem]]:
    """The real names of the volumes labelled for `tide`, and the labels that fail."""
    names: List[str] = []
    problems: List[Problem] = []
    for container in host.containers:
        refs, label_problems = labels.tide_refs(container)
        label = labels.TIDE_PREFIX + tide
        problems += [p for p in label_problems if p.where == labels.where(container, label)]
        for ref in refs.get(tide, []):
            name, problem = labels.resolve(ref, host)
            if problem:
                problems.append(problem)
            elif name not in names:
                names.append(name)
    return names, problems


def auto_remove_problem(container: Container, settings: Settings):
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
    volumes, problems = tide_volumes(host, tide_name)
    by_id = {c.id: c for c in host.containers}
    shapes = grouping.group(
        volumes,
        {c.id: c.volumes for c in host.containers},
        {c.id: c.project for c in host.containers},
        tide.grouping,
    )
    groups = []
    for shape in shapes:
        members = stop_order([by_id[i] for i in shape.containers])
        steps, group_problems = [], []
        for container in members:
            settings, bad = labels.parse_settings(container)
            steps.append(Step(container, settings))
            group_problems += bad + [p for p in [auto_remove_problem(container, settings)] if p]
        vols = tuple(sorted(shape.volumes))
        groups.append(Group(_group_name(vols, members), vols, tuple(steps), tuple(group_problems)))
    return Plan(tide, config.crane_of(tide), tuple(groups), tuple(problems))


def check_host(host: Host, config: Config) -> List[Problem]:
    """Every problem with the labels on this host, for every tide (for `salvage check`)."""
    problems: List[Problem] = []
    for container in host.containers:
        refs, label_problems = labels.tide_refs(container)
        problems += label_problems
        for tide, tide_refs in refs.items():
            if tide not in config.tides:
                problems.append(
                    Problem(
                        labels.where(container, labels.TIDE_PREFIX + tide),
                        f'no tide named "{tide}" in {config.path}',
                    )
                )
                continue
            for ref in tide_refs:
                problems += [p for p in [labels.resolve(ref, host)[1]] if p]
        problems += labels.parse_settings(container)[1]
    for tide in config.tides:  # what only a plan shows: a --rm container a tide would stop
        problems += [p for g in plan_tide(host, config, tide).groups for p in g.problems]
    return list(dict.fromkeys(problems))
