"""Read the host's containers and volumes with two list calls, whatever the host's size.

The list answers carry everything planning needs (labels, state, mounts; volume labels,
driver and options), so there is no inspect per object. salvage's own cranes are left out.
"""

from __future__ import annotations

from salvage import labels
from salvage.engine.client import Engine
from salvage.model import Container, Host, Volume


def discover(engine: Engine) -> Host:
    api = engine.api
    containers = tuple(
        Container(
            id=item["Id"],
            name=(item.get("Names") or ["/" + item["Id"][:12]])[0].lstrip("/"),
            state=item.get("State", ""),
            labels=item.get("Labels") or {},
            volumes=tuple(m["Name"] for m in item.get("Mounts") or () if m.get("Type") == "volume"),
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
    return Host(containers, volumes)
