"""`salvage restore VOLUME`: refill a volume from one of its snapshots, never destroying
data it was not asked to replace.

1. The crane lists the volume's snapshots (the newest consistent one, unless one is named)
   and gives the chosen one's metadata. That metadata is untrusted input: a missing target
   is created with driver `local`, no driver options and the snapshot's labels (compose
   labels too, so `docker compose up` adopts it; not for `--to` a new name). Its driver and
   options are used only with --trust-meta-options, and never a `device` for `--to`.
2. Whether the target holds data is decided by looking at its mounted content (a volume
   whose options bind a host directory is not empty for being new). Data is replaced only
   with --force, after a safety backup of it that triggers no retention.
3. The crane restores into a scratch volume of salvage's own, first: it reads the snapshot
   before anything (a safety backup's retention) could remove it, and a crane that fails
   leaves the target as it was.
4. Only then are the target's users stopped, through the record (salvage.safety.record) like a
   backup's, the safety backup taken, the scratch copied onto the target (a local copy in a
   helper container), and the users brought back. The scratch volume is removed (by
   `salvage recover` if salvage dies).

A bind mount's backup (salvage.core.selection) is restored into a host directory: the one some
container bind-mounts now under that backup name, only with --force (a safety backup of it
first), or `--to /new/path`, a directory that does not exist yet. The metadata's host path
is never used: a backup store cannot make a restore write anywhere else.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import posixpath
import time
from dataclasses import dataclass
from datetime import datetime
from typing import List, Optional, Tuple

from salvage.actions.snapshots import RestoreError, choose, snapshots, tide_of
from salvage.config import Config
from salvage.core import labels, ordering, selection
from salvage.core.model import Host, Problem
from salvage.core.planning import stop_order
from salvage.crane.invoke import Call
from salvage.engine import containers, volumes
from salvage.engine.client import Engine, describe
from salvage.engine.cranes import check_secrets, ensure_image
from salvage.engine.discovery import discover
from salvage.safety import restoring
from salvage.safety.downtime import Downtime
from salvage.safety.record import Entry, Record

log = logging.getLogger("salvage")
# A safety backup must never remove the snapshot being restored (docs/crane-interface.md).
SAFETY_ENV = {"SALVAGE_NO_RETENTION": "1"}


def _options(options: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(options.items())) or "none"


def _table(meta: dict, key: str) -> dict:
    value = meta.get(key)
    return value if isinstance(value, dict) else {}


def volume_spec(meta: dict, target: str, adopt: bool, trust: bool) -> Tuple[str, dict, dict]:
    """(driver, options, labels) for a target that does not exist, from untrusted metadata."""
    volume = _table(meta, "volume")
    asked_driver = str(volume.get("driver") or "local")
    asked = {str(k): str(v) for k, v in _table(volume, "options").items()}
    found = _table(volume, "labels")
    # salvage's own labels mean something to recovery (a scratch volume is removed): never
    # from a backup store. A copy under another name is no part of the compose project.
    tags = {
        str(k): str(v)
        for k, v in found.items()
        if not str(k).startswith("salvage.")
        and (adopt or not str(k).startswith("com.docker.compose."))
    }
    driver, options = "local", {}
    if trust:
        driver, options = asked_driver, dict(asked)
        if not adopt and "device" in options:
            # A copy must never share the original's storage: the restore would replace it.
            log.warning(
                "volume %s: not taking the option device=%s from the snapshot (--to)",
                target,
                options.pop("device"),
            )
    elif asked_driver != "local" or asked:
        log.warning(
            "volume %s: the snapshot's metadata asks for driver %s, options %s: not used"
            " (creating it with driver local and no options; --trust-meta-options uses them)",
            target,
            asked_driver,
            _options(asked),
        )
    return driver, options, tags


def _create(engine: Engine, name: str, spec: Tuple[str, dict, dict]) -> None:
    driver, options, tags = spec
    # The plan line: what will be created, driver and options first.
    log.info(
        "volume %s: creating it (driver %s, options %s, %d labels)",
        name,
        driver,
        _options(options),
        len(tags),
    )
    engine.api.create_volume(name, driver=driver, driver_opts=options or None, labels=tags or None)


def host_directory(
    host: Host, meta: dict, volume: str, to: Optional[str], force: bool, resuming: bool
) -> Optional[str]:
    """The host directory a restore fills, or None when it fills a volume; RestoreError
    when a bind mount's backup may not be restored where asked."""
    if to and to.startswith("/"):
        directory = posixpath.normpath(to)
        if ":" in directory or not directory.strip("/"):
            raise RestoreError(f"--to {to}: not a path a restore can make (no colon, not /)")
        if os.path.lexists(directory) and not resuming:
            raise RestoreError(
                f"{directory} exists: a restore into a host directory makes a new"
                " one (--to a path that does not exist)"
            )
        return directory
    if to:
        return None  # into a volume, whatever the snapshot was of
    mounted = {selection.bind_name(b.source): b.source for c in host.containers for b in c.binds}
    if volume in mounted:
        if not force and not resuming:
            raise RestoreError(
                f"{volume} is the bind mount {mounted[volume]}: not refilling it"
                " without --force (which first takes a safety backup of it),"
                " or restore it --to /new/path"
            )
        return mounted[volume]
    if meta.get("kind") == "bind":
        raise RestoreError(
            f"{volume} is a bind mount's backup and no container bind-mounts its"
            " directory now: restore it --to /new/path"
        )
    return None


def _empty(engine: Engine, call: Call, volume: str) -> bool:
    try:
        return volumes.is_empty(engine, call.crane.image, volume, call.labels(volume))
    except volumes.HelperFailed as error:
        raise RestoreError(str(error)) from None


def restore(
    engine: Engine,
    config: Config,
    volume: str,
    snapshot: Optional[str] = None,
    to: Optional[str] = None,
    tide: Optional[str] = None,
    force: bool = False,
    trust_meta: bool = False,
    machine: Optional[str] = None,
    before: Optional[datetime] = None,
    marked: bool = False,
) -> List[Problem]:
    """Problems that remain after the restore (containers not brought back); RestoreError
    when the target was not changed. `machine`: whose snapshot (default this machine's);
    `before`: the newest one taken before then; `marked`: a volume it creates carries the
    labels.RESTORED marker (restore --all)."""
    call = Call.new(config, tide_of(engine, config, volume, tide), machine)
    crane, target = call.crane, to or volume
    try:
        check_secrets(crane)
        ensure_image(engine, crane)
    except Exception as error:
        raise RestoreError(describe(error)) from None

    record = Record(config.state_directory)
    unfinished = restoring.of(record.entries(), target)
    if unfinished and not snapshot:  # the same restore again: the same snapshot
        snapshot = unfinished.prior
    chosen = choose(crane.name, volume, snapshots(engine, call, volume), snapshot, before)
    if not chosen.consistent:
        log.warning(
            "snapshot %s of %s is marked not consistent: restoring it as named", chosen.id, volume
        )
    code, output = call.run(engine, "meta", volume, snapshot=chosen.id)
    try:
        meta = json.loads(output)
    except ValueError:
        meta = None
    if code != 0 or not isinstance(meta, dict):
        raise RestoreError(f'crane "{crane.name}" gave no metadata for snapshot {chosen.id}')

    host = discover(engine)
    directory = host_directory(host, meta, volume, to, force, unfinished is not None)
    if directory:  # what a helper mounts, and a safety backup's bind mount
        users = list(selection.bind_users(host, directory))
        found = selection.BindSource(target, directory, tuple(c.name for c in users))
        call = dataclasses.replace(call, binds={target: found})
    else:
        users = list(host.consumers(target))
    source = directory or target
    if not directory and target not in host.volumes:
        driver, options, tags = volume_spec(meta, target, target == volume, trust_meta)
        if marked:
            tags[labels.RESTORED] = f"{machine or config.machine}/{volume}"
        _create(engine, target, (driver, options, tags))
    if unfinished:
        log.warning(
            "volume %s: finishing the restore that was interrupted while replacing its"
            " content (run %s)",
            target,
            unfinished.run_id[:8],
        )
    elif not force and not (directory and to) and not _empty(engine, call, source):
        raise RestoreError(
            f"volume {target} is not empty: not restoring over it without --force"
            " (which first takes a safety backup of it)"
        )
    paused = [c.name for c in users if c.state == "paused"]
    if paused:
        raise RestoreError(f"volume {target} is used by paused {', '.join(paused)}: unpause first")

    # Finishing an interrupted restore continues its record entries (same run id), so that
    # a crash at any moment leaves its users held down, never started.
    run_id = unfinished.run_id if unfinished else call.run_id
    down = Downtime(engine, record, run_id, call.tide.name, cranes=call.run_id)
    scratch = volumes.create_scratch(
        engine, volumes.scratch_name(call.run_id), call.run_id, config.state_directory
    )
    try:
        started = time.monotonic()
        log.info(
            "volume %s: restoring snapshot %s of %s into scratch volume %s first",
            target,
            chosen.id,
            volume,
            scratch,
        )
        code, _ = call.run(
            engine, "restore", volume, target=scratch, snapshot=chosen.id, cancelled=down.cancelled
        )
        if code != 0:
            raise RestoreError(
                f'crane "{crane.name}" failed to restore snapshot {chosen.id} (exit {code}):'
                f" volume {target} is {'still half restored' if unfinished else 'unchanged'}"
            )
        log.info("volume %s: snapshot read in %.1f s", target, time.monotonic() - started)
        job = _Job(call, down, volume, target, source, chosen.id, scratch, force, unfinished)
        return job.replace(engine, users, host.compose_files)
    finally:
        down.close()  # no-op once the job has ended it
        volumes.remove_scratch(engine, scratch)


@dataclass
class _Job:
    """Replacing the target's content with the scratch volume's, its users stopped."""

    call: Call
    down: Downtime
    volume: str  # whose snapshot
    target: str
    source: str  # what holds the target's content: the volume, or a host directory
    snapshot: str
    scratch: str
    force: bool
    unfinished: Optional[Entry]  # a restore of the target that was interrupted mid-copy

    def replace(self, engine: Engine, users, files) -> List[Problem]:
        call, target, down = self.call, self.target, self.down
        record = down.record
        if self.unfinished:  # the users it stopped are this downtime's too
            down.entries.extend(restoring.held(record.entries(), self.unfinished))
        half = self.unfinished is not None  # the target's content is partly replaced
        marker, problems = self.unfinished, []
        try:
            stopping = stop_order([c for c in users if c.live], files)
            down.enter_all(
                [(c, "stop", containers.current(engine, c.id).stop_timeout) for c in stopping],
                ordering.dependencies(stopping, files),
                lambda c: log.info("container %s: stop", c.name),
            )
            # Looked at again with its users down: what they wrote meanwhile counts too.
            if not half and not _empty(engine, call, self.source):
                if not self.force:
                    raise RestoreError(
                        f"volume {target} is not empty any more: not restoring"
                        " over it without --force"
                    )
                down.check(f"volume {target}")
                log.info("volume %s: safety backup first (crane %s)", target, call.crane.name)
                code, _ = call.run(
                    engine, "backup", target, env=SAFETY_ENV, cancelled=down.cancelled
                )
                if code != 0:
                    raise RestoreError(
                        f"safety backup of {target} failed (exit {code}): not restored"
                    )
            down.check(f"volume {target}")
            marker = restoring.entry(
                target, self.volume, self.snapshot, down.run_id, call.tide.name
            )
            record.add(marker)  # on disk before the first byte of the target changes
            half, started = True, time.monotonic()
            volumes.replace(
                engine,
                call.crane.image,
                self.scratch,
                self.source,
                call.labels(self.volume),
                call.tide.crane_timeout,
            )
            half = False
            record.remove(marker)
            log.info("volume %s: restored (copied in %.1f s)", target, time.monotonic() - started)
        except volumes.HelperFailed as error:
            log.error("%s", error)
        except BaseException:  # the engine gone, a bug: say what stays down, then go on
            if half and marker is not None:
                users = [e.name for e in down.entries]
                log.error("%s", Problem(f"volume {target}", restoring.explain(marker, users)))
            raise
        finally:
            if half and marker is not None:  # never start an app on half its data: its users
                down.close()  # stay recorded, down
                users = [e.name for e in down.entries]
                problems = [Problem(f"volume {target}", restoring.explain(marker, users))]
            else:
                problems = down.end()
        return problems
