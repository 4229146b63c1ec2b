"""`salvage restore VOLUME`: refill a volume from one of its snapshots.

1. The crane lists the volume's snapshots and gives the chosen one's metadata.
2. A missing target volume is created with the driver, options and labels it had (compose
   labels too, so `docker compose up` adopts it; not for a restore `--to` a new name).
3. A target that holds data is refused, unless --force: then the crane first takes a
   safety backup of what is there, so nothing is ever lost.
4. The containers that use the target are stopped for the duration, through the record
   (salvage.record) like a backup's, and brought back afterwards.
"""

from __future__ import annotations

import json
import logging
import time
from typing import List, Optional

from salvage.actions.snapshots import RestoreError, snapshots, tide_of
from salvage.config import Config
from salvage.downtime import Downtime
from salvage.engine import containers
from salvage.engine.client import Engine, describe
from salvage.engine.cranes import check_secrets, ensure_image
from salvage.engine.discovery import discover
from salvage.invoke import Call
from salvage.model import Problem
from salvage.planning import stop_order
from salvage.record import Record

log = logging.getLogger("salvage")


def _is_empty(engine: Engine, call: Call, volume: str) -> bool:
    """Look inside with the crane's own image (cranes have a POSIX sh)."""
    api = engine.api
    created = api.create_container(
        call.crane.image, entrypoint=["/bin/sh", "-c", "ls -A /v | head -n 1"],
        host_config=api.create_host_config(binds=[f"{volume}:/v:ro"], network_mode="none"),
        labels=call.labels(volume),  # removed by recovery if left behind
    )  # fmt: skip
    try:
        api.start(created)
        if api.wait(created, timeout=120).get("StatusCode") != 0:
            raise RestoreError(f"cannot look inside volume {volume} with {call.crane.image}")
        return not api.logs(created, stdout=True, stderr=False).strip()
    finally:
        api.remove_container(created, force=True)


def _create(engine: Engine, name: str, meta: dict, adopt: bool) -> None:
    volume = meta.get("volume") or {}
    labels = dict(volume.get("labels") or {})
    if not adopt:  # a copy under another name is no part of the compose project
        labels = {k: v for k, v in labels.items() if not k.startswith("com.docker.compose.")}
    engine.api.create_volume(
        name, driver=volume.get("driver") or "local",
        driver_opts=volume.get("options") or None, labels=labels or None,
    )  # fmt: skip
    log.info("created volume %s (driver %s, %d labels)", name, volume.get("driver"), len(labels))


def restore(
    engine: Engine,
    config: Config,
    volume: str,
    snapshot: Optional[str] = None,
    to: Optional[str] = None,
    tide: Optional[str] = None,
    force: bool = False,
) -> List[Problem]:
    """Problems that remain after the restore (containers not brought back); RestoreError
    when nothing was changed."""
    call = Call.new(config, tide_of(engine, config, volume, tide))
    crane, target = call.crane, to or volume
    try:
        check_secrets(crane)
        ensure_image(engine, crane)
    except Exception as error:
        raise RestoreError(describe(error)) from None

    found = snapshots(engine, call, volume)
    if not found:
        raise RestoreError(f'crane "{crane.name}" has no snapshot of {volume}')
    chosen = next((s for s in found if s.id == snapshot), None) if snapshot else found[0]
    if chosen is None:
        raise RestoreError(
            f'crane "{crane.name}" has no snapshot {snapshot} of {volume}'
            f" (it has: {', '.join(s.id for s in found[:5])}{' ...' if len(found) > 5 else ''})"
        )
    code, output = call.run(engine, "meta", volume, snapshot=chosen.id)
    try:
        meta = json.loads(output)
    except ValueError:
        meta = None
    if code != 0 or not isinstance(meta, dict):
        raise RestoreError(f'crane "{crane.name}" gave no metadata for snapshot {chosen.id}')

    host = discover(engine)
    if target not in host.volumes:
        _create(engine, target, meta, adopt=target == volume)
        full = False
    else:
        full = not _is_empty(engine, call, target)
        if full and not force:
            raise RestoreError(
                f"volume {target} is not empty: not restoring over it without --force"
                " (which first takes a safety backup of it)"
            )
    users = list(host.consumers(target))
    paused = [c.name for c in users if c.state == "paused"]
    if paused:
        raise RestoreError(f"volume {target} is used by paused {', '.join(paused)}: unpause first")
    return _with_users_stopped(engine, config, call, users, volume, target, chosen.id, full)


def _with_users_stopped(engine, config, call, users, volume, target, snapshot, full):
    # The same downtime as a run's: recorded, brought back whatever happens, signals unwind.
    down = Downtime(engine, Record(config.state_directory), call.run_id, call.tide.name)
    try:
        for container in stop_order([c for c in users if c.live]):
            log.info("container %s: stop", container.name)
            down.enter(container, "stop", containers.current(engine, container.id).stop_timeout)
        if full:
            down.check(f"volume {target}")
            log.info("volume %s: safety backup first (crane %s)", target, call.crane.name)
            code, _ = call.run(engine, "backup", target, cancelled=down.cancelled)
            if code != 0:
                raise RestoreError(f"safety backup of {target} failed (exit {code}): not restored")
        down.check(f"volume {target}")
        started = time.monotonic()
        log.info("volume %s: restoring snapshot %s of %s", target, snapshot, volume)
        code, _ = call.run(
            engine, "restore", volume, target=target, snapshot=snapshot, cancelled=down.cancelled
        )
        if code != 0:
            raise RestoreError(f'crane "{call.crane.name}" failed to restore (exit {code})')
        log.info("volume %s: restored in %.1f s", target, time.monotonic() - started)
    finally:
        problems = down.end()
    return problems
