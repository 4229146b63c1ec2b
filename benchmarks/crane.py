"""The tar crane run by hand, outside salvage: the same image, env and mounts that salvage
gives it, so that a baseline does the same work as salvage's crane."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Dict, List, Optional

from benchmarks.engine import TAR_CRANE, Engine


def env(volume: str) -> Dict[str, str]:
    return {
        "SALVAGE_CRANE_API": "1",
        "SALVAGE_ACTION": "backup",
        "SALVAGE_MACHINE_NAME": "bench",
        "SALVAGE_CRANE_NAME": "tar",
        "SALVAGE_TIDE_NAME": "script",
        "SALVAGE_VOLUME_NAME": volume,
        "SALVAGE_TIDE_TIMESTAMP": str(int(time.time())),
    }


def meta_dir(engine: Engine, volume: str) -> Path:
    """A /salvage/meta/meta.json like salvage's, to bind-mount (salvage copies its own in)."""
    directory = engine.tmp / f"meta-{volume}"
    directory.mkdir(exist_ok=True)
    info = engine.api.inspect_volume(volume)
    meta = {
        "crane": "tar",
        "machine": "bench",
        "tide": "script",
        "volume": {
            "name": volume,
            "driver": info.get("Driver"),
            "labels": info.get("Labels") or {},
        },
    }
    (directory / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return directory


def binds(engine: Engine, volume: str) -> List[str]:
    target = engine.tmp / "backups"
    target.mkdir(exist_ok=True)
    return [
        f"{volume}:/salvage/volume:ro",
        f"{meta_dir(engine, volume)}:/salvage/meta",  # writable, as salvage's (the manifest)
        f"{target}:/salvage/target",
    ]


def run(
    engine: Engine,
    volume: str,
    entrypoint: Optional[List[str]] = None,
    command: Optional[List[str]] = None,
) -> float:
    """Seconds from the crane's start to its end (creation and removal left out)."""
    api = engine.api
    created = api.create_container(
        TAR_CRANE,
        command,
        entrypoint=entrypoint,
        environment=env(volume),
        labels=engine.labels,
        host_config=api.create_host_config(binds=binds(engine, volume)),
    )
    try:
        started = time.perf_counter()
        api.start(created["Id"])
        status = api.wait(created["Id"], timeout=600)["StatusCode"]
        seconds = time.perf_counter() - started
        if status != 0:
            raise RuntimeError(f"crane exited {status}: {api.logs(created['Id'])[-2000:]!r}")
        return seconds
    finally:
        api.remove_container(created["Id"], force=True)
