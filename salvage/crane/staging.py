"""Staging (per tide `staging`): while a group's containers are down, each volume is copied
to a stage volume of salvage's own with `cp -a --reflink=auto` (blocks shared on XFS, btrfs,
ZFS >= 2.2; a plain local copy elsewhere); the containers then come back at once, and the
crane backs up the stage with every container up. The stage is removed afterwards.

The copy runs in a stager container of the crane's own image (GNU cp needed), with the
volume read-only and the stage writable. Stage volumes and stagers carry their labels from
the moment they exist, so `recover` finds and removes what a killed run left.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from typing import List, Optional

from salvage.core import labels
from salvage.core.model import Problem
from salvage.engine.client import Engine, describe
from salvage.engine.cranes import container_name
from salvage.engine.errors import DockerException, NotFound
from salvage.errors import SalvageError

log = logging.getLogger("salvage")
STAGE_PREFIX = labels.STAGE_PREFIX

# $1: "check" (auto: stage only when it fits) or "force" (always). Reflinks are probed with
# a file of the volume itself: they work only when source and stage share a file system.
# Without them a full copy must fit, with 5 % + 64 MiB to spare, in the stage's free space.
SCRIPT = r"""
set -u
cannot() { echo "$*" >&2; exit 3; }  # no GNU cp, no room: nothing copied
cp --reflink=auto --version >/dev/null 2>&1 || cannot "the crane image has no GNU cp (--reflink)"
way=copy
probe=$(find /source -type f -size +0c 2>/dev/null | head -n 1)
if [ -n "$probe" ] && cp --reflink=always -- "$probe" /stage/.salvage-probe 2>/dev/null; then
    way=reflink
fi
rm -f /stage/.salvage-probe
if [ "$way" = copy ] && [ "$1" = check ]; then
    need=$(du -skx /source | cut -f1)
    free=$(df -Pk /stage | tail -n 1 | tr -s ' ' | cut -d ' ' -f 4)
    room=$((need + need / 20 + 65536))
    [ "$free" -ge "$room" ] || cannot "no room for a copy: it needs $((room / 1024)) MiB," \
        "$((free / 1024)) MiB free where the stage would be (no reflinks there)"
fi
cp -a --reflink=auto /source/. /stage/ || exit 1
echo "$way"
"""


class StageFailed(SalvageError):
    """The stage could not be made (no GNU cp, no room, a failed copy): one line."""


@dataclass(frozen=True)
class Stage:
    volume: str  # the original
    name: str  # the stage volume
    way: str  # "reflink" or "copy"
    seconds: float


def stage_name() -> str:
    return STAGE_PREFIX + uuid.uuid4().hex[:12]


def make(
    engine: Engine,
    image: str,
    volume: str,
    mode: str,
    tags: dict,
    instance: str,
    timeout: float,
    run_id: str,
) -> Stage:
    """Copy `volume` to a new stage volume; StageFailed (the stage removed) when it cannot.
    `tags`: the run's labels for the stager (crane, run, instance): a killed run's stager
    is then killed by an abort and removed by recover like a crane."""
    api = engine.api
    started = time.monotonic()
    name = stage_name()
    api.create_volume(
        name, driver="local", labels={labels.STAGE: volume, labels.INSTANCE: instance}
    )
    try:
        way = _copy(engine, image, volume, name, mode, tags, timeout, run_id)
    except BaseException:
        remove(engine, name)
        raise
    return Stage(volume, name, way, time.monotonic() - started)


def _copy(
    engine: Engine,
    image: str,
    volume: str,
    stage: str,
    mode: str,
    tags: dict,
    timeout: float,
    run_id: str,
) -> str:
    api = engine.api
    check = "check" if mode == "auto" else "force"
    created = api.create_container(
        image,
        entrypoint=["/bin/sh", "-c", SCRIPT, "stager", check],
        labels={**tags, labels.STAGE: volume},
        user="0",
        name=container_name(f"stage-{volume}", run_id),
        host_config=api.create_host_config(
            binds=[f"{volume}:/source:ro", f"{stage}:/stage"], network_mode="none"
        ),
    )
    try:
        api.start(created)
        try:
            code = engine.unbounded().wait(created, timeout=timeout).get("StatusCode")
        except Exception:  # a read timeout, however the transport words it
            raise StageFailed(f"staging still running after {timeout:.0f} s") from None
        if code != 0:
            said = api.logs(created, stdout=False, stderr=True).decode("utf-8", "replace")
            last = (said.strip().splitlines() or [f"the stager exited with {code}"])[-1]
            raise StageFailed(last)
        return api.logs(created, stdout=True, stderr=False).decode().strip() or "copy"
    finally:
        try:
            engine.retry(lambda: api.remove_container(created, force=True))
        except DockerException:
            pass  # recovery removes leftovers by label


def probe(engine: Engine, image: str, tags: dict, timeout: float, run_id: str) -> Optional[str]:
    """Why the crane image cannot stage (it has no GNU cp), or None: asked once per tide,
    with every container up, so that an image that cannot never costs downtime."""
    api = engine.api
    created = api.create_container(
        image,
        entrypoint=["/bin/sh", "-c", "cp --reflink=auto --version >/dev/null 2>&1"],
        labels={**tags, labels.STAGE: ""},
        user="0",
        name=container_name("stage-probe", run_id),
        host_config=api.create_host_config(network_mode="none"),
    )
    try:
        api.start(created)
        code = engine.unbounded().wait(created, timeout=timeout).get("StatusCode")
        return None if code == 0 else "the crane image has no GNU cp (--reflink)"
    finally:
        try:
            engine.retry(lambda: api.remove_container(created, force=True))
        except DockerException:
            pass  # recovery removes leftovers by label


def remove(engine: Engine, name: str) -> None:
    try:
        engine.retry(lambda: engine.api.remove_volume(name, force=True))
    except NotFound:
        pass
    except DockerException as error:
        log.warning("stage volume %s: cannot be removed: %s", name, describe(error))


def remove_leftovers(engine: Engine, instance: str) -> List[Problem]:
    """This salvage's stage volumes from runs that died (their stagers are gone by then:
    they carry the crane label)."""
    mine = {"label": [labels.STAGE, f"{labels.INSTANCE}={instance}"]}
    try:
        found = engine.retry(lambda: engine.api.volumes(filters=mine)).get("Volumes") or []
    except DockerException as error:
        return [Problem("recover", f"cannot list leftover stage volumes: {describe(error)}")]
    problems = []
    for volume in found:
        try:
            engine.api.remove_volume(volume["Name"], force=True)
            log.info("recover: removed leftover stage volume %s", volume["Name"])
        except DockerException as error:
            problems.append(
                Problem(f"stage volume {volume['Name']}", f"cannot be removed: {describe(error)}")
            )
    return problems
