"""Looking inside volumes and copying between them, for restores: short-lived helper
containers from the crane's own image (cranes have a POSIX sh, find and cp), and the
scratch volumes a restore fills before it touches its target.

salvage never deletes a volume, except the scratch volumes it made itself (labelled
`salvage.scratch` and with its instance), once they are no longer needed.
"""

from __future__ import annotations

import logging
from typing import List, Mapping

from docker.errors import DockerException, NotFound

from salvage.core import labels
from salvage.core.model import Problem
from salvage.engine.client import Engine, describe
from salvage.errors import SalvageError

log = logging.getLogger("salvage")

# Make the target's content exactly the scratch volume's: every file's type, mode, owner,
# times and links, and the root directory's own owner, mode and time (cp -a of "."). GNU
# and busybox cp both keep hard links within the copy.
REPLACE = (
    "set -e; find /target -mindepth 1 -maxdepth 1 -exec rm -rf {} +; cp -a /scratch/. /target/"
)


class HelperFailed(SalvageError):
    pass


def _helper(
    engine: Engine,
    image: str,
    script: str,
    binds: List[str],
    tags: Mapping[str, str],
    timeout: float,
) -> str:
    """Run `script` under sh in a container of `image` with `binds`; its standard output."""
    api = engine.api
    created = api.create_container(
        image,
        entrypoint=["/bin/sh", "-c", script],
        labels=dict(tags),
        host_config=api.create_host_config(binds=binds, network_mode="none"),
    )
    try:
        api.start(created)
        code = engine.unbounded().wait(created, timeout=timeout).get("StatusCode")
        if code != 0:
            said = api.logs(created, stdout=False, stderr=True).decode("utf-8", "replace")
            last = said.strip().splitlines()[-1:] or [f"exit {code}"]
            raise HelperFailed(last[0])
        return api.logs(created, stdout=True, stderr=False).decode("utf-8", "replace")
    finally:
        try:
            engine.retry(lambda: api.remove_container(created, force=True))
        except DockerException:
            pass  # recovery removes leftovers by label


def is_empty(engine: Engine, image: str, volume: str, tags: Mapping[str, str]) -> bool:
    """Whether the volume holds nothing, as seen through a read-only mount: what a volume's
    driver options bind (a host directory) counts, however new the volume is."""
    try:
        listing = _helper(engine, image, "ls -A /v | head -n 1", [f"{volume}:/v:ro"], tags, 120)
    except HelperFailed as error:
        raise HelperFailed(f"cannot look inside volume {volume} with {image}: {error}") from None
    return not listing.strip()


def replace(
    engine: Engine, image: str, scratch: str, target: str, tags: Mapping[str, str], timeout: float
) -> None:
    """Make `target`'s content a copy of `scratch`'s (a local copy, no crane involved)."""
    binds = [f"{scratch}:/scratch:ro", f"{target}:/target"]
    try:
        _helper(engine, image, REPLACE, binds, tags, timeout)
    except HelperFailed as error:
        raise HelperFailed(f"copying the restored data into volume {target}: {error}") from None


SCRATCH_PREFIX = labels.SCRATCH_PREFIX


def scratch_name(run_id: str) -> str:
    return SCRATCH_PREFIX + run_id[:12]


def create_scratch(engine: Engine, name: str, run_id: str, instance: str) -> str:
    """An empty local volume of salvage's own (no driver options: nothing outside it)."""
    engine.api.create_volume(
        name, driver="local", labels={labels.SCRATCH: run_id, labels.INSTANCE: instance}
    )
    return name


def remove_scratch(engine: Engine, name: str) -> None:
    try:
        engine.retry(lambda: engine.api.remove_volume(name, force=True))
    except NotFound:
        pass
    except DockerException as error:
        log.warning("scratch volume %s: cannot be removed: %s", name, describe(error))


def remove_leftovers(engine: Engine, label: str, kind: str, instance: str) -> List[Problem]:
    """This salvage's volumes labelled `label` (scratch volumes of restores, stages of
    backups: `kind` in its words) that runs which died left behind."""
    mine = {"label": [label, f"{labels.INSTANCE}={instance}"]}
    try:
        found = engine.retry(lambda: engine.api.volumes(filters=mine)).get("Volumes") or []
    except DockerException as error:
        return [Problem("recover", f"cannot list leftover {kind} volumes: {describe(error)}")]
    problems = []
    for volume in found:
        try:
            engine.api.remove_volume(volume["Name"], force=True)
            log.info("recover: removed leftover %s volume %s", kind, volume["Name"])
        except DockerException as error:
            problems.append(
                Problem(f"{kind} volume {volume['Name']}", f"cannot be removed: {describe(error)}")
            )
    return problems
