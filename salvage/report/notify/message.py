"""What a notification says. An Event per tide start, tide end and volume: its first line
says what happened, and for a failure what failed and why; details follow; `data` is what
a webhook template fills in.

Built from names, results and counts only: a crane's env, its secrets and its output are
never part of a message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List

from salvage import __version__
from salvage.core.humanize import count, duration
from salvage.core.results import TideResult, VolumeResult


@dataclass(frozen=True)
class Event:
    name: str  # tide.*, volume.success, .failure, .shrunk, verify.failure
    title: str  # the first line
    details: str  # the lines after it
    data: dict

    @property
    def text(self) -> str:
        return f"{self.title}\n{self.details}" if self.details else self.title

    @property
    def failure(self) -> bool:
        return self.name.endswith(".failure")


# What a webhook template may use ($tide, ${volume}, ...); every event has them all, and
# those that do not apply to it are empty (null, 0, "" or []).
FIELDS = (
    "event",
    "ok",
    "message",
    "details",
    "text",
    "machine",
    "tide",
    "crane",
    "run_id",
    "trigger",
    "started",
    "ended",
    "seconds",
    "downtime",
    "volume",
    "group",
    "error",
    "exit_code",
    "size",
    "bytes_read",
    "files",
    "snapshot",
    "shrunk",
    "volumes",
    "volumes_ok",
    "volumes_failed",
    "failed",
    "problems",
    "interrupted",
    "salvage_version",
)
NUMBERS = (
    "started",
    "ended",
    "seconds",
    "downtime",
    "exit_code",
    "size",
    "bytes_read",
    "files",
    "volumes",
    "volumes_ok",
    "volumes_failed",
)


def _data(run, name: str) -> dict:
    data = dict.fromkeys(FIELDS)
    data.update(
        event=name,
        message="",
        details="",
        text="",
        machine=run.config.machine,
        tide=run.tide.name,
        crane=run.crane.name,
        run_id=run.run_id,
        trigger=run.result.trigger,
        started=run.result.started,
        seconds=0.0,
        downtime=0.0,
        volume="",
        group="",
        error="",
        volumes=0,
        volumes_ok=0,
        volumes_failed=0,
        failed=[],
        problems=[],
        salvage_version=__version__,
    )
    return data


def _event(name: str, title: str, details: List[str], data: dict) -> Event:
    text = "\n".join(details)
    data.update(message=title, details=text, text=f"{title}\n{text}" if text else title)
    return Event(name, title, text, data)


def tide_started(run, plan) -> Event:
    volumes = sum(len(group.volumes) for group in plan.groups)
    data = _data(run, "tide.start")
    data.update(volumes=volumes, problems=[str(p) for p in plan.problems])
    title = (
        f"salvage on {run.config.machine}: tide {run.tide.name} started:"
        f" {count(volumes, 'volume')} in {count(len(plan.groups), 'group')}"
    )
    return _event("tide.start", title, [f"crane {run.crane.name}, run {run.run_id}"], data)


def volume_done(run, result: VolumeResult) -> Event:
    name = "volume.success" if result.ok else "volume.failure"
    data = _data(run, name)
    data.update(
        ok=result.ok,
        volume=result.volume,
        group=result.group,
        error=result.message,
        exit_code=result.exit_code,
        size=result.size,
        bytes_read=result.bytes_read,
        files=result.files,
        snapshot=result.snapshot,
        shrunk=result.shrunk,
        seconds=result.seconds,
        downtime=result.downtime,
        started=result.started or None,
        ended=result.started + result.seconds if result.started else None,
    )
    where = f"salvage on {run.config.machine}: volume {result.volume}"
    if result.ok:
        title = f"{where} backed up in {duration(result.seconds)} (tide {run.tide.name})"
    else:
        title = f"{where} failed: {result.message} (tide {run.tide.name})"
    facts = [f"group {result.group}", f"crane {result.crane}"]
    if result.exit_code is not None:
        facts.append(f"exit code {result.exit_code}")
    facts.append(f"containers down {duration(result.downtime)}")
    if result.size is not None:
        facts.append(f"{result.size} bytes stored")
    if result.files is not None:
        facts.append(count(result.files, "file"))
    if result.snapshot:
        facts.append(f"snapshot {result.snapshot}")
    return _event(name, title, [", ".join(facts)], data)


def volume_shrunk(run, result: VolumeResult) -> Event:
    """A good backup far smaller than the previous one (the tide's shrink_alert)."""
    event = volume_done(run, result)
    data = dict(event.data, event="volume.shrunk")
    title = (
        f"salvage on {run.config.machine}: volume {result.volume} {result.shrunk}"
        f" (tide {run.tide.name})"
    )
    return _event("volume.shrunk", title, [event.details], data)


def verify_failed(call, volume: str, why: str) -> Event:
    """`salvage verify` found a volume's newest snapshot not intact (`call`: its crane call)."""
    data = dict.fromkeys(FIELDS)
    data.update(
        event="verify.failure",
        ok=False,
        machine=call.config.machine,
        tide=call.tide.name,
        crane=call.crane.name,
        run_id=call.run_id,
        trigger="verify",
        volume=volume,
        error=why,
        salvage_version=__version__,
        volumes=1,
        volumes_failed=1,
        volumes_ok=0,
        failed=[{"volume": volume, "error": why}],
        problems=[],
        seconds=0.0,
        downtime=0.0,
        group="",
        interrupted=None,
    )
    title = (
        f"salvage on {call.config.machine}: volume {volume} failed verification: {why}"
        f" (tide {call.tide.name})"
    )
    return _event("verify.failure", title, [f"crane {call.crane.name}, run {call.run_id}"], data)


def _why(result: TideResult) -> str:
    """What went wrong in a tide, most serious first, in one line."""
    parts = []
    if result.interrupted:
        parts.append(f"interrupted ({result.interrupted})")
    parts += [str(error) for error in result.errors[:2]]  # e.g. a container not put back
    failed = result.failed
    if failed:
        shown = "; ".join(f"{v.volume}: {v.message}" for v in failed[:3])
        more = f"; and {len(failed) - 3} more" if len(failed) > 3 else ""
        parts.append(
            f"{len(failed)} of {count(len(result.volumes), 'volume')} failed: {shown}{more}"
        )
    if result.problems:
        parts.append(f"{count(len(result.problems), 'label problem')}: {result.problems[0]}")
    return "; ".join(parts)


def tide_done(run, result: TideResult) -> Event:
    name = "tide.success" if result.ok else "tide.failure"
    data = _data(run, name)
    done = [v.volume for v in result.volumes if v.ok]
    data.update(
        ok=result.ok,
        started=result.started,
        ended=result.ended,
        seconds=result.seconds,
        downtime=result.downtime,
        volumes=len(result.volumes),
        volumes_ok=len(done),
        volumes_failed=len(result.failed),
        interrupted=result.interrupted,
        failed=[{"volume": v.volume, "error": v.message} for v in result.failed],
        problems=[str(p) for p in result.problems + result.errors],
    )
    where = f"salvage on {run.config.machine}: tide {result.tide}"
    if not result.ok:
        title = f"{where} failed: {_why(result)}"
    elif result.volumes:
        title = f"{where}: {count(len(done), 'volume')} backed up in {duration(result.seconds)}"
    else:
        title = f"{where}: no volume is labelled salvage.tide.{result.tide}"
    details = [result.summary()]
    details += [f"failed: {v.volume}: {v.message}" for v in result.failed]
    if done:
        details.append(f"backed up: {', '.join(done)}")
    details += [f"problem: {p}" for p in result.errors + result.problems]
    details.append(f"run {result.run_id} ({result.trigger})")
    return _event(name, title, details, data)


def sample() -> Event:
    """An event with every field set, to try a webhook template on when it is loaded."""
    data: Dict[str, Any] = dict.fromkeys(FIELDS, 'a "quoted"\nline')
    data.update(
        dict.fromkeys(NUMBERS, 1.5),
        ok=False,
        failed=[{"volume": "v", "error": "e"}],
        problems=["p"],
    )
    return Event("tide.failure", data["message"], "", data)
