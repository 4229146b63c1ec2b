"""Read the host's containers and volumes with two list calls, whatever the host's size.

The list answers carry almost everything planning needs (labels, state, mounts; volume
labels, driver and options). Only whether a container was started with `--rm` is in no
list answer: for planning (`tides`), that is asked of each live container those tides
could stop, one inspect each. salvage's own cranes are left out. The compose files of
docker-compose 1.x projects are read for their depends_on (salvage.engine.compose_files).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Iterable, Optional, Set

from salvage.config import Tide
from salvage.core import labels, selection
from salvage.core.model import Bind, Container, Host, Volume
from salvage.engine import compose_files
from salvage.engine import containers as engine_containers
from salvage.engine.client import Engine


def discover(engine: Engine, tides: Iterable[Tide] = ()) -> Host:
    api = engine.api
    containers = tuple(
        Container(
            id=item["Id"],
            name=(item.get("Names") or ["/" + item["Id"][:12]])[0].lstrip("/"),
            state=item.get("State", ""),
            labels=item.get("Labels") or {},
            volumes=tuple(m["Name"] for m in item.get("Mounts") or () if m.get("Type") == "volume"),
            binds=tuple(
                Bind(m["Source"], m["Destination"], _directory(m["Source"]))
                for m in item.get("Mounts") or ()
                if m.get("Type") == "bind" and m.get("Source") and m.get("Destination")
            ),
        )
        for item in api.containers(all=True)
        # salvage's own cranes are no application's containers: never plan to stop one.
        if labels.CRANE not in (item.get("Labels") or {})
    )
    volumes = {
        item["Name"]: Volume(
            name=item["Name"],
            driver=item.get("Driver", "local"),
            labels=item.get("Labels") or {},
            options=item.get("Options") or {},
            created=item.get("CreatedAt"),
        )
        for item in (api.volumes() or {}).get("Volumes") or ()
    }
    # docker-compose 1.x records no depends_on: its projects' files say it (when readable).
    host = Host(containers, volumes, compose_files.for_containers(containers))
    stoppable = _stoppable(host, tides)
    auto_removed = {i for i in stoppable if engine_containers.auto_remove(engine, i)}
    if not auto_removed:
        return host
    return Host(
        tuple(dataclasses.replace(c, auto_remove=c.id in auto_removed) for c in containers),
        volumes,
        host.compose_files,
    )


def _directory(path: str) -> Optional[bool]:
    """A bind mount's source is a directory, a file, or not visible from here (None)."""
    return os.path.isdir(path) if os.path.lexists(path) else None


def _stoppable(host: Host, tides: Iterable[Tide]) -> Set[str]:
    """The live containers that these tides could stop: those that mount a volume or bind
    mount a tide backs up, and the other containers of their compose projects (grouping
    `project`)."""
    named = {name for tide in tides for name in selection.select(host, tide).names}
    mounted = selection.mounts(host)
    users = {c.id for c in host.containers if named.intersection(mounted[c.id])}
    projects = {c.project for c in host.containers if c.id in users and c.project}
    return {c.id for c in host.containers if c.live and (c.id in users or c.project in projects)}
