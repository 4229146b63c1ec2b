"""Grouping: which volumes are backed up together, and which containers go down for them.

A pure function of the container-volume graph, so that it can be tested exhaustively.

- individual: one group per volume, holding every container that mounts it;
- smart: the connected components of the graph of containers and the tide's volumes;
- project: like smart, and every container of a compose project that takes part goes into
  the same group (an application is taken down whole, not piece by piece).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, FrozenSet, Iterable, List, Mapping, Optional, Set

MODES = ("individual", "smart", "project")


@dataclass(frozen=True)
class GroupShape:
    volumes: FrozenSet[str]
    containers: FrozenSet[str]


class _Union:
    def __init__(self) -> None:
        self.parent: Dict[object, object] = {}

    def find(self, node: object) -> object:
        self.parent.setdefault(node, node)
        while self.parent[node] != node:
            self.parent[node] = self.parent[self.parent[node]]
            node = self.parent[node]
        return node

    def join(self, a: object, b: object) -> None:
        self.parent[self.find(a)] = self.find(b)


def group(
    volumes: Iterable[str],
    mounts: Mapping[str, Iterable[str]],
    projects: Optional[Mapping[str, Optional[str]]] = None,
    mode: str = "smart",
) -> List[GroupShape]:
    """Split `volumes` into groups.

    mounts: container id -> the volumes it mounts (any volumes; others are ignored).
    projects: container id -> its compose project, or None.
    """
    if mode not in MODES:
        raise ValueError(f"unknown grouping mode {mode!r}")
    wanted = sorted(set(volumes))
    projects = projects or {}
    consumers: Dict[str, Set[str]] = {v: set() for v in wanted}
    for container, mounted in mounts.items():
        for volume in mounted:
            if volume in consumers:
                consumers[volume].add(container)

    if mode == "individual":
        return [GroupShape(frozenset([v]), frozenset(consumers[v])) for v in wanted]

    union = _Union()
    for volume in wanted:
        union.find(("v", volume))
        for container in consumers[volume]:
            union.join(("c", container), ("v", volume))
            if mode == "project" and projects.get(container):
                union.join(("p", projects[container]), ("v", volume))

    members: Dict[object, Set[str]] = {}
    for volume in wanted:
        members.setdefault(union.find(("v", volume)), set()).add(volume)
    shapes = []
    for vols in members.values():
        containers = {c for v in vols for c in consumers[v]}
        if mode == "project":
            involved = {projects.get(c) for c in containers} - {None, ""}
            containers |= {c for c, p in projects.items() if p in involved}
        shapes.append(GroupShape(frozenset(vols), frozenset(containers)))
    return sorted(shapes, key=lambda shape: min(shape.volumes))
