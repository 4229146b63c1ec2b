"""Staging (per tide `staging`): while a group's containers are down, each volume is copied
to a stage volume of salvage's own with `cp -a --reflink=auto` (blocks shared on XFS, btrfs,
ZFS >= 2.2; a plain local copy elsewhere); the containers then come back at once, and the
crane backs up the stage with every container up. The stage is removed afterwards.

Everything but the copy happens before the containers go down: the stage volumes are made,
and one stager container per group (the crane's own image: GNU cp needed) is started with
each volume read-only at /source/<n> and its stage writable at /stage/<n>; checks run in it
(GNU cp, reflinks, room). While the containers are down the copies are `docker exec`s in
that stager, all at once. Stage volumes and stagers carry their labels from the moment they
exist, so `recover` finds and removes what a killed run left.

Without reflinks, where the crane image also has rsync and GNU find, the stage is filled
with the containers still up (a live copy, inconsistent), and while they are down only what
changed since is copied again (SYNC): every file whose ctime is past the moment the live
copy began, less a margin, with `rsync --ignore-times`, then an `rsync --delete` for the
rest (deletions, renames, attributes). ctime cannot be set from user space, so a change
that keeps a file's size and mtime is still seen. The margin covers the clock's granularity
and writes through a shared mapping to a page already dirty, which set no time until the
page is written back: dirty_expire + dirty_writeback (40 s by default), read from the
kernel; without periodic writeback there is no such bound, and the copy is made while the
containers are down. With reflinks there is no live copy: the clone is as quick.
"""

from __future__ import annotations

import logging
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Union

from salvage.core import labels
from salvage.engine.client import Engine, EngineError, describe
from salvage.engine.containers import Armed, CommandTimeout, arm, disarm, execute, finish
from salvage.engine.cranes import container_name
from salvage.engine.errors import ENGINE_ERRORS, DockerException, NotFound

log = logging.getLogger("salvage")
STAGE_PREFIX = labels.STAGE_PREFIX

# The stager's own process: it waits (a busybox image too: it fails the checks, not this),
# and passes SIGUSR1 on to each armed SYNC (GO). Killing it (an abort, a forced removal)
# ends every copy under way.
WAIT = (  # one line, without quotes: a socket proxy refuses a body that JSON escapes
    "trap 'exit 0' TERM;"
    " trap 'for f in /tmp/salvage-armed-*; do [ -f $f ] && kill -USR1 $(cat $f); done' USR1;"
    " while :; do sleep 3600 & wait $!; kill $! 2>/dev/null; done"
)

# Run in the stager with `$1` the volume's number, before the containers go down: whether
# GNU cp is there, whether reflinks work from /source/$1 to /stage/$1 (a file of the volume
# itself is cloned: they work only when source and stage share a file system), and the room
# a full copy needs (du + 5 % + 64 MiB) against the free space where the stage is, in KiB;
# then whether the stage can be filled with the containers up (the module's docstring): rsync and
# GNU find, source and stage on one file system (one kernel's clock: no NFS), and periodic
# writeback, with its margin in seconds (0: it cannot).
# Its last line: "<reflink|copy> <room> <free> <margin>", or why it cannot stage (exit 3).
CHECK = r"""
set -u
cannot() { echo "$*"; exit 3; }
cp --reflink=auto --version >/dev/null 2>&1 || cannot "the crane image has no GNU cp (--reflink)"
way=copy
probe=$(find "/source/$1" -type f -size +0c 2>/dev/null | head -n 1)
if [ -n "$probe" ] && cp --reflink=always -- "$probe" "/stage/$1/.salvage-probe" 2>/dev/null
then
    way=reflink
fi
rm -f "/stage/$1/.salvage-probe"
need=$(du -skx "/source/$1" | cut -f1)
free=$(df -Pk "/stage/$1" | tail -n 1 | tr -s ' ' | cut -d ' ' -f 4)
margin=0
expire=$(cat /proc/sys/vm/dirty_expire_centisecs 2>/dev/null) || expire=
every=$(cat /proc/sys/vm/dirty_writeback_centisecs 2>/dev/null) || every=
if rsync --version >/dev/null 2>&1 \
    && find "/stage/$1" -maxdepth 0 -newerct @0 >/dev/null 2>&1 \
    && [ "$(stat -c %d "/source/$1")" = "$(stat -c %d "/stage/$1")" ] \
    && [ "${expire:-0}" -gt 0 ] 2>/dev/null && [ "${every:-0}" -gt 0 ] 2>/dev/null
then
    margin=$(( (expire + every) / 100 + 5 ))
fi
echo "$way $((need + need / 20 + 65536)) $free $margin"
"""

# With the containers up (`$1` the number, `$2` the margin): the moment, less the margin,
# after which a changed file is copied again by SYNC, then a live copy. The copy may fail (a
# file removed under it): SYNC then makes the stage right from whatever it holds. The copy
# is written out before the containers go down: the engine's own writes while it stops and
# starts them would otherwise queue behind it.
PRESYNC = r"""
now=$(date +%s)
echo "$now $((now - $2))" > "/tmp/salvage-since-$1" || exit 3
rm -f "/tmp/salvage-copied-$1"
cp -a --reflink=auto "/source/$1/." "/stage/$1/" 2>/dev/null && : > "/tmp/salvage-copied-$1"
sync -f "/stage/$1" 2>/dev/null
exit 0
"""

# SYNC is started with the containers still up (`$1` the number) and waits: a SIGUSR1 to
# the stager (passed on by WAIT) lets it go, so the exec's own cost (tens of ms) is not paid
# while they are down. It says ARMED once it can be signalled, and BEGUN once signalled.
ARMED = b"salvage-armed\n"
GO = """go=
trap 'go=1' USR1
echo $$ > "/tmp/salvage-armed-$1"
echo salvage-armed
while [ -z "$go" ]; do sleep 3600 & wait $!; kill $! 2>/dev/null; done
rm -f "/tmp/salvage-armed-$1"
echo salvage-go
"""
BEGUN = b"salvage-go\n"

# With the containers down (`$1` the number): the stage made equal to the volume. A clock
# that went back since PRESYNC makes ctimes meaningless: then everything is copied again.
# Nothing with a later ctime after a whole live copy: the stage is the volume already.
# Otherwise what changed is copied again whatever its times say (--ignore-times; a directory
# listed gets its attributes, not its content), then the rest is made equal
# (--modify-window=-1 compares times to the nanosecond).
SYNC = r"""
set -u
read -r began since < "/tmp/salvage-since-$1" || exit 3
src="/source/$1" stage="/stage/$1"
if [ "$(date +%s)" -lt "$began" ]; then
    find "$stage" -mindepth 1 -delete && exec cp -a --reflink=auto "$src/." "$stage/"
fi
changed="/tmp/salvage-changed-$1"
cd "$src" && find . -newerct "@$since" -print0 > "$changed" || exit
[ -s "$changed" ] || [ ! -e "/tmp/salvage-copied-$1" ] || exit 0
rsync="rsync -aHAXS --numeric-ids --modify-window=-1"
if [ -s "$changed" ]; then
    $rsync --force --ignore-times --from0 --files-from="$changed" -- "$src/" "$stage/" || exit
fi
exec $rsync --delete -- "$src/" "$stage/"
"""


def copy_command(number: int) -> str:
    return f"cp -a --reflink=auto /source/{number}/. /stage/{number}/"


@dataclass(frozen=True)
class Stage:
    volume: str  # the original
    name: str  # the stage volume
    way: str  # "reflink" or "copy"
    seconds: float
    presynced: bool = False  # only what changed since a live copy was copied

    @property
    def how(self) -> str:
        return f"{self.way}, what changed since a live copy" if self.presynced else self.way


@dataclass
class Stager:
    """A group's stager, started: the volumes it can stage (their number and way), and why
    it cannot stage the others."""

    id: str
    stages: Dict[str, str]  # volume -> its stage volume
    numbers: Dict[str, int]
    ways: Dict[str, str] = field(default_factory=dict)
    presynced: Dict[str, bool] = field(default_factory=dict)  # filled with containers up
    armed: Dict[str, Armed] = field(default_factory=dict)  # its SYNC, started, waiting
    failed: Dict[str, str] = field(default_factory=dict)


def stage_name() -> str:
    return STAGE_PREFIX + uuid.uuid4().hex[:12]


def prepare(
    engine: Engine,
    image: str,
    volumes: List[str],
    mode: str,
    tags: dict,
    instance: str,
    timeout: float,
    run_id: str,
    enter: Callable[[str, str], None],
) -> Stager:
    """Before the containers go down: a stage volume per volume, and the group's stager,
    started and asked per volume whether it can stage it. `enter(kind, name)` is called
    before each is created ("stage" or "stager", its name): the caller records it, and
    removes it in the end. `tags`: the run's labels (crane, run, instance): an abort
    kills the stager like a crane, and recover removes it. `mode` "auto" fails a volume whose
    full copy has no room (with the group's other copies); "always" copies anyway."""
    api = engine.api
    stages, margins = {}, {}
    for volume in volumes:
        name = stage_name()
        enter("stage", name)
        api.create_volume(
            name, driver="local", labels={labels.STAGE: volume, labels.INSTANCE: instance}
        )
        stages[volume] = name
    numbers = {volume: number for number, volume in enumerate(volumes)}
    binds = []
    for volume, number in numbers.items():
        binds += [f"{volume}:/source/{number}:ro", f"{stages[volume]}:/stage/{number}"]
    name = container_name(f"stage-{volumes[0]}", run_id)
    enter("stager", name)
    created = api.create_container(
        image,
        entrypoint=["/bin/sh", "-c", WAIT],
        labels={**tags, labels.STAGE: " ".join(volumes)},
        user="0",
        name=name,
        host_config=api.create_host_config(binds=binds, network_mode="none"),
    )
    stager = Stager(created["Id"], stages, numbers)
    try:
        api.start(stager.id)
        reserved = 0  # KiB the group's full copies take on the stages' file system
        for volume, number in numbers.items():
            try:
                code, said = execute(engine, stager.id, f"set -- {number}\n{CHECK}", "0", timeout)
            except CommandTimeout:
                stager.failed[volume] = f"its check still running after {timeout:.0f} s"
                continue
            last = (said.strip().splitlines() or [""])[-1]
            answer = last.split()
            if code != 0 or len(answer) != 4 or not all(a.isdigit() for a in answer[1:]):
                stager.failed[volume] = last or f"the stager's check exited with {code}"
                continue
            way, room, free, margin = answer[0], int(answer[1]), int(answer[2]), int(answer[3])
            fits = way == "reflink" or free - reserved >= room
            if not fits and mode == "auto":
                stager.failed[volume] = (
                    f"no room for a copy: it needs {room // 1024} MiB,"
                    f" {max(free - reserved, 0) // 1024} MiB free where the stage would be"
                    " (no reflinks there)"
                )
                continue
            if way == "copy":
                reserved += room
            stager.ways[volume] = way
            # A reflink copy is as quick as the sync would be; a plain copy is made live
            # only where it fits: it never fills the disk under running containers.
            if margin and way == "copy" and fits:
                margins[volume] = margin
        _presync(engine, stager, margins, timeout)
    except BaseException:
        remove_stager(engine, stager)
        raise
    return stager


def _presync(engine: Engine, stager: Stager, margins: Dict[str, int], timeout: float) -> None:
    """With the containers up: fill the stages with live copies, all at once. A volume
    whose live copy cannot start is copied while the containers are down; one still
    running after `timeout` fails (it would go on writing into the stage)."""

    def one(volume: str) -> None:
        command = f"set -- {stager.numbers[volume]} {margins[volume]}\n{PRESYNC}"
        started = time.monotonic()
        try:
            code, _ = execute(engine, stager.id, command, "0", timeout)
        except CommandTimeout:
            stager.failed[volume] = f"its live copy still running after {timeout:.0f} s"
            del stager.ways[volume]
            return
        stager.presynced[volume] = code == 0
        if code == 0:
            log.info(
                "volume %s: live copy to its stage in %.2f s (containers up)",
                volume,
                time.monotonic() - started,
            )
            try:  # unarmed, SYNC is an exec of its own while the containers are down
                command = f"set -- {stager.numbers[volume]}\n{GO}{SYNC}"
                stager.armed[volume] = arm(engine, stager.id, command, "0", ARMED, 30)
            except (*ENGINE_ERRORS, EngineError) as error:
                log.debug("volume %s: its sync is not armed: %s", volume, describe(error))

    if margins:
        with ThreadPoolExecutor(max_workers=len(margins)) as pool:
            list(pool.map(one, margins))


def copy(engine: Engine, stager: Stager, timeout: float) -> Dict[str, Union[Stage, str]]:
    """The containers are down: every volume the stager can stage is copied to its stage,
    all at once; per volume its Stage, or why the copy failed (one line)."""

    def one(volume: str) -> Union[Stage, str]:
        started, presynced = time.monotonic(), stager.presynced.get(volume, False)
        try:
            number = stager.numbers[volume]
            armed = stager.armed.pop(volume, None)
            if armed:
                code, said = finish(engine, armed, BEGUN, 10, timeout)
            else:
                command = f"set -- {number}\n{SYNC}" if presynced else copy_command(number)
                code, said = execute(engine, stager.id, command, "0", timeout)
        except CommandTimeout:
            return f"the copy still running after {timeout:.0f} s"
        except ENGINE_ERRORS as error:
            return describe(error)
        if code != 0:
            return (said.strip().splitlines() or [f"the copy exited with {code}"])[-1]
        seconds = time.monotonic() - started
        return Stage(volume, stager.stages[volume], stager.ways[volume], seconds, presynced)

    volumes = list(stager.ways)
    if not volumes:
        return {}
    if stager.armed:  # one signal lets every armed sync go
        try:
            engine.api.kill(stager.id, signal="SIGUSR1")
        except ENGINE_ERRORS as error:  # then each is an exec of its own (and may fail too)
            log.debug("stager %s: not signalled: %s", stager.id[:12], describe(error))
            for armed in stager.armed.values():
                disarm(armed)
            stager.armed.clear()
    with ThreadPoolExecutor(max_workers=len(volumes)) as pool:
        return dict(zip(volumes, pool.map(one, volumes)))


def remove_stager(engine: Engine, stager: Stager) -> None:
    for armed in stager.armed.values():
        disarm(armed)
    stager.armed.clear()
    try:  # again once an engine that went away is back
        engine.retry(lambda: engine.api.remove_container(stager.id, force=True))
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
