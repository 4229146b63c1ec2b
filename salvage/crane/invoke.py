"""One call of a crane (docs/crane-interface.md): its action, environment, labels and
metadata. Backups, restores, snapshot lists and metadata reads all go through `call`.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable, Mapping, Optional, Sequence, Tuple

from salvage import __version__
from salvage.config import Config, Crane, Tide
from salvage.core import labels
from salvage.core.selection import BindSource
from salvage.crane import backup_report
from salvage.crane.backup_report import Report
from salvage.engine.client import Engine, describe
from salvage.engine.cranes import CraneTimeout, run_crane, secret_env, tide_actions

log = logging.getLogger("salvage")
# The crane interface's version (docs/crane-interface.md), in SALVAGE_CRANE_API and meta.json;
# not the label salvage.crane.api (core.labels.CRANE_API) that says which one an image speaks.
INTERFACE_VERSION = "1"
ACTIONS = ("backup", "restore", "list", "meta", "mark", "verify", "volumes")
# Once per tide, when the crane's image offers them (its salvage.crane.actions label):
# `init` before the first backup, `retention` after the last, with every container up.
TIDE_ACTIONS = ("init", "retention")


@dataclass(frozen=True)
class Call:
    """Who calls the crane, for what: shared by every volume of one run."""

    config: Config
    tide: Tide
    crane: Crane
    run_id: str
    timestamp: int  # the run's start (epoch seconds): a backup's snapshot time
    # Whose snapshots: another machine's (`--machine`, restoring a host) or, None, this one's.
    machine: Optional[str] = None
    # The bind mounts among the names it backs up: their host directories (the plan's).
    binds: Mapping[str, BindSource] = field(default_factory=dict)

    @classmethod
    def new(cls, config: Config, tide: Tide, machine: Optional[str] = None) -> Call:
        return cls(config, tide, config.crane_of(tide), uuid.uuid4().hex, int(time.time()), machine)

    def env(
        self, action: str, volume: str, snapshot: Optional[str] = None, volumes: Sequence[str] = ()
    ) -> dict:
        env = dict(self.crane.env)
        env.update(secret_env(self.crane))
        # A backup (a restore's safety backup too) is always this machine's own.
        machine = self.config.machine if action == "backup" else self.machine
        env.update(
            SALVAGE_CRANE_API=INTERFACE_VERSION,
            SALVAGE_ACTION=action,
            SALVAGE_MACHINE_NAME=machine or self.config.machine,
            SALVAGE_CRANE_NAME=self.crane.name,
            SALVAGE_TIDE_NAME=self.tide.name,
            SALVAGE_VOLUME_NAME=volume,
            SALVAGE_TIDE_TIMESTAMP=str(self.timestamp),
        )
        if snapshot:
            env["SALVAGE_SNAPSHOT"] = snapshot
        if action in TIDE_ACTIONS:
            env["SALVAGE_VOLUMES"] = " ".join(volumes)
        return env

    def labels(self, volume: str) -> dict:
        return {
            labels.CRANE: self.crane.name,
            labels.CRANE_TIDE: self.tide.name,
            labels.CRANE_VOLUME: volume,
            labels.RUN: self.run_id,
            labels.INSTANCE: self.config.state_directory,
        }

    def meta(self, info: Optional[dict], bind: Optional[BindSource] = None) -> dict:
        """What /salvage/meta/meta.json holds; `info` is Docker's answer about the volume,
        `bind` the bind mount backed up instead of a volume."""
        meta = {
            "salvage_version": __version__,
            "crane_api": INTERFACE_VERSION,
            "machine": self.config.machine,
            "tide": self.tide.name,
            "crane": self.crane.name,
            "tide_timestamp": self.timestamp,
            "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        if bind:
            meta.update(kind="bind", host_path=bind.host_path, containers=list(bind.containers))
        elif info:
            meta["kind"] = "volume"
            meta["volume"] = {
                "name": info["Name"],
                "driver": info.get("Driver"),
                "labels": info.get("Labels") or {},
                "options": info.get("Options") or {},
                "scope": info.get("Scope"),
                "created": info.get("CreatedAt"),
            }
        return meta

    def run(
        self,
        engine: Engine,
        action: str,
        volume: str,
        *,
        target: Optional[str] = None,
        snapshot: Optional[str] = None,
        cancelled: Optional[threading.Event] = None,
        env: Optional[dict] = None,
        read_back: Optional[tuple] = None,
        on_line: Optional[Callable[[str], None]] = None,
        stdin: Optional[Callable[[object], None]] = None,
        stdout: Optional[Callable[[object], None]] = None,
        meta: Optional[dict] = None,
        stage: Optional[str] = None,
    ) -> tuple:
        """Run the crane for `volume` (whose snapshots it handles): (exit code, stdout).

        backup: `volume` is mounted read-only (a bind mount of `binds`: its host directory,
        read-only). restore: `target` (default `volume`) is
        mounted writable. list, meta: no volume is mounted; standard output is data.
        `env`: more SALVAGE_* variables for this call (SALVAGE_NO_RETENTION).
        A stream (a database's dump) mounts no volume: `stdin` feeds a backup
        (SALVAGE_SOURCE=stdin), `stdout` takes a restore (SALVAGE_TARGET=stdout); `meta`
        adds to meta.json.
        `stage`: a backup mounts this copy of `volume` (salvage.crane.staging) instead; the
        environment and meta.json still describe `volume`.
        """
        # verify: `target` is a scratch volume for a test restore (verify --restore)
        mounted = {"backup": volume, "restore": target or volume, "verify": target}.get(action)
        # A bind mount is only ever backed up (a restore fills a scratch volume first).
        bind = self.binds.get(volume) if action == "backup" else None
        streams = {"SALVAGE_SOURCE": "stdin"} if stdin else {}
        if stdout:
            streams = {"SALVAGE_TARGET": "stdout"}
        mounted = None if streams or bind else mounted
        info = engine.api.inspect_volume(mounted) if mounted else None
        if action == "backup" and stage:
            mounted = stage
        return run_crane(
            engine,
            self.crane,
            name=volume,
            volume=mounted,
            bind=bind.host_path if bind else None,
            env={**self.env(action, volume, snapshot), **streams, **(env or {})},
            labels=self.labels(volume),
            meta={**self.meta(info, bind), **(meta or {})},
            run_id=self.run_id,
            timeout=self.tide.crane_timeout,
            stdin=stdin,
            stdout=stdout,
            on_line=on_line or (lambda line: log.info("%s: %s", volume, line)),
            writable=action in ("restore", "verify"),
            capture=action in ("list", "meta", "volumes"),
            cancelled=cancelled,
            read_back=read_back,
        )

    def backup(
        self,
        engine: Engine,
        volume: str,
        cancelled: Optional[threading.Event] = None,
        stdin: Optional[Callable[[object], None]] = None,
        meta: Optional[dict] = None,
        stage: Optional[str] = None,
        previous: Optional[str] = None,
    ) -> Tuple[int, Optional[Report]]:
        """Back up `volume` (from its `stage` when staged; with `stdin`, the stream it feeds
        under that name): (exit code, what the crane reported it stored, or None). A report
        that cannot be trusted is ignored, with a warning naming the volume. `previous`: the
        snapshot of its last good backup, a hint for the crane (SALVAGE_PREVIOUS_SNAPSHOT)."""
        found: list = []
        code, _ = self.run(
            engine,
            "backup",
            volume,
            cancelled=cancelled,
            env={"SALVAGE_PREVIOUS_SNAPSHOT": previous} if previous else None,
            read_back=(backup_report.PATH, backup_report.LIMIT, found.append),
            stdin=stdin,
            meta=meta,
            stage=stage,
        )
        if code != 0 or not found or found[0] is None:
            return code, None
        try:
            return code, backup_report.parse(found[0])
        except backup_report.BadReport as error:
            log.warning(
                "volume %s: crane %s: %s ignored: %s",
                volume,
                self.crane.name,
                backup_report.PATH,
                error,
            )
            return code, None

    def tide_action(
        self,
        engine: Engine,
        action: str,
        volumes: Sequence[str] = (),
        cancelled: Optional[threading.Event] = None,
        starting: Callable[[], None] = lambda: None,
    ) -> Optional[str]:
        """Run a tide-wide action (TIDE_ACTIONS) if the crane's image offers it, with no
        volume mounted and SALVAGE_VOLUMES naming the tide's volumes: None when it is done
        or not offered, else why it failed, in one line."""
        try:
            if action not in tide_actions(engine, self.crane):
                return None
            starting()
            log.info("tide %s: crane %s: %s", self.tide.name, self.crane.name, action)
            code, _ = run_crane(
                engine,
                self.crane,
                name=f"_{action}",
                volume=None,
                env=self.env(action, "", volumes=volumes),
                labels=self.labels(""),
                meta=self.meta(None),
                run_id=self.run_id,
                timeout=self.tide.crane_timeout,
                on_line=lambda line: log.info("crane %s (%s): %s", self.crane.name, action, line),
                cancelled=cancelled,
            )
        except CraneTimeout as timeout:
            return f'crane "{self.crane.name}" ({action}) {timeout}'
        except Exception as failure:  # one line, whatever the engine said
            return f'crane "{self.crane.name}" ({action}): {describe(failure)}'
        if code in (0, 64):  # 64: the crane has nothing to do for it after all
            return None
        return f'crane "{self.crane.name}" ({action}) exited with {code}'
