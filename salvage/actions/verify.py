"""`salvage verify`: have the crane check that a volume's newest snapshot is intact (its
`verify` action: the tar crane tests the archive and compares its listing with what the
backup recorded; the restic crane runs `restic check` reading a subset of the data).

No container is stopped and no volume is mounted: verify reads the backup store only. A
crane is asked only when its image declares `verify` in its salvage.crane.actions label,
since a crane that ignores SALVAGE_ACTION would take the call for a backup.
"""

from __future__ import annotations

import logging
import time
from typing import Dict, List, Optional, Sequence, Tuple

from salvage.actions.snapshots import RestoreError, tide_of
from salvage.config import Config
from salvage.core.dumps import tide_dumps
from salvage.core.planning import tide_volumes
from salvage.crane.invoke import Call
from salvage.engine import volumes
from salvage.engine.client import Engine, describe
from salvage.engine.cranes import CraneTimeout, ensure_image, tide_actions
from salvage.engine.discovery import discover
from salvage.report import metrics
from salvage.report.history import History, HistoryError

log = logging.getLogger("salvage")


def targets(
    engine: Engine, config: Config, tides: Sequence[str], names: Sequence[str]
) -> List[Tuple[str, str]]:
    """(tide, volume) pairs to verify: the named volumes (in --tide, or the tide whose labels
    name each), else every volume labelled for the tides and their databases' dumps."""
    if names:
        if len(tides) > 1:
            raise RestoreError("name at most one --tide with volumes")
        tide = tides[0] if tides else None
        return [(tide_of(engine, config, volume, tide).name, volume) for volume in names]
    chosen = [config.tides[tide] for tide in tides]
    host = discover(engine, chosen)
    return [
        (t.name, volume)
        for t in chosen
        for volume in sorted(tide_volumes(host, t)[0])
        + [dump.name for dump in tide_dumps(host, t.name)[0]]
    ]


def verify_one(engine: Engine, call: Call, volume: str, restore: bool = False) -> Optional[str]:
    """None when the crane says the volume's newest snapshot is intact; else why not.
    `restore`: the crane also restores it into a throwaway scratch volume and compares that
    with the manifest its backup recorded; the scratch volume is removed whatever happens
    (or by `salvage recover`, if salvage dies meanwhile)."""
    crane = call.crane.name
    said: List[str] = []

    def line(text: str) -> None:
        log.info("%s: %s", volume, text)
        if text.strip():
            said.append(text.strip())

    try:
        ensure_image(engine, call.crane)
        if "verify" not in tide_actions(engine, call.crane):
            return f'crane "{crane}" cannot verify (its image declares no verify action)'
        if not restore:
            code, _ = call.run(engine, "verify", volume, snapshot="latest", on_line=line)
        else:
            scratch = volumes.create_scratch(
                engine, volumes.scratch_name(call.run_id), call.run_id, call.config.state_directory
            )
            try:
                code, _ = call.run(
                    engine,
                    "verify",
                    volume,
                    target=scratch,
                    snapshot="latest",
                    env={"SALVAGE_VERIFY_RESTORE": "1"},
                    on_line=line,
                )
            finally:
                volumes.remove_scratch(engine, scratch)
    except CraneTimeout as timeout:
        return f'crane "{crane}" {timeout}'
    except Exception as error:  # the engine, an image: one line
        return f'crane "{crane}": {describe(error)}'
    if code == 0:
        return None
    if code == 3:
        return f'crane "{crane}" has no snapshot of it'
    reason = f": {said[-1]}" if said else ""
    return f'crane "{crane}" exited with {code}{reason}'


def verify(
    engine: Engine,
    config: Config,
    tides: Sequence[str],
    names: Sequence[str],
    restore: bool = False,
) -> Tuple[int, List[str]]:
    """Verify each volume: how many were checked, and one line per volume found bad."""
    bad = []
    calls: Dict[str, Call] = {}
    recorded = True
    pairs = targets(engine, config, tides, names)
    if not pairs:
        log.warning("verify: no volume is labelled for %s", ", ".join(tides))
    for tide, volume in pairs:
        # A run id of its own per volume: its scratch volume's name comes from it.
        call = (
            Call.new(config, config.tides[tide])
            if restore
            else calls.setdefault(tide, Call.new(config, config.tides[tide]))
        )
        log.info("volume %s: verifying (tide %s, crane %s)", volume, tide, call.crane.name)
        started = time.time()
        why = verify_one(engine, call, volume, restore)
        if why:
            bad.append(f"volume {volume}: verify failed: {why}")
            _notify(config, call, volume, why)
        else:
            log.info("volume %s: verified: its newest snapshot is intact", volume)
        recorded = recorded and _record(config, tide, volume, started, why, restore)
    if pairs and recorded and config.metrics_directory:  # last verified, per volume
        try:
            metrics.write(
                config.metrics_directory,
                metrics.render(
                    metrics.samples(History(config.state_directory), sorted(config.tides))
                ),
            )
        except (OSError, HistoryError) as error:
            log.warning("metrics: not written: %s", error)
    return len(pairs), bad


def _record(
    config: Config, tide: str, volume: str, started: float, why: Optional[str], restore: bool
) -> bool:
    """Into the history, for `status` and the metrics; False (and a warning) if it cannot."""
    try:
        History(config.state_directory).verify_done(
            tide, volume, started, why is None, restore, why or ""
        )
        return True
    except HistoryError as error:
        log.warning("history: verify results are not recorded: %s", error)
        return False


def _notify(config: Config, call: Call, volume: str, why: str) -> None:
    """The targets that ask for verify.failure hear of it (a failure is a warning, never
    more)."""
    if not config.notify:
        return
    from salvage.report.notify import message, send

    event = message.verify_failed(call, volume, why)
    for target in config.notify:
        send(target, event)
