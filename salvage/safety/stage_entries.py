"""Stage volumes and stagers (salvage.crane.staging) in the record: each is entered before
it is created and left once it is removed, so that `recover` removes what a run that died
made, by name, as it brings containers back (their labels find them too)."""

from __future__ import annotations

import time

from salvage.engine.client import Engine
from salvage.engine.errors import NotFound
from salvage.safety.record import Entry

STAGE, STAGER = "stage", "stager"


def entry(kind: str, name: str, volumes: str, run_id: str, tide: str) -> Entry:
    """`kind`: STAGE (a stage volume) or STAGER (a container); `volumes`: what it stages."""
    return Entry(f"{kind}:{name}", volumes, kind, "", time.time(), run_id, tide)


def of(entry: Entry) -> bool:
    return entry.change in (STAGE, STAGER)


def _name(entry: Entry) -> str:
    return entry.container.split(":", 1)[1]


def describe(entry: Entry) -> str:
    name = _name(entry)
    return f"stage volume {name}" if entry.change == STAGE else f'stager "{name}"'


def remove(engine: Engine, entry: Entry) -> bool:
    """Remove the entry's stage volume or stager; False when it was already gone. Engine
    errors are raised: the entry stays."""
    name = _name(entry)
    api = engine.api
    try:
        if entry.change == STAGER:
            engine.retry(lambda: api.remove_container(name, force=True))
        else:
            engine.retry(lambda: api.remove_volume(name, force=True))
    except NotFound:
        return False
    return True
