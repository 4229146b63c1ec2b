"""The reference restic crane under faults, with real restic (a Debian image): cranes at
once on a new repository, retention while others back up, a wrong password, a full disk,
each volume's own parent snapshot."""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from pathlib import Path

import pytest
from support.debian import RESTIC_CRANE, crane_image
from support.scene import CALM

RESTIC = RESTIC_CRANE
PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="session")
def restic_image(fault_engine):
    return crane_image(fault_engine.host, "restic", RESTIC)


def _use_restic(scene, target, concurrent: int = 4, keep: str = "", image: str = RESTIC) -> None:
    password = scene.tmp / "restic-password"
    if not password.exists():
        password.write_text(PASSWORD)
        password.chmod(0o600)
    env = f'env = {{ RESTIC_KEEP_LAST = "{keep}" }}' if keep else ""
    scene.config.write_text(
        textwrap.dedent(f"""
        machine = "faults"
        state_directory = "{scene.state}"
        [tides.{scene.tide}]
        crane = "restic"
        grouping = "smart"
        max_concurrent = {concurrent}
        [cranes.restic]
        image = "{image}"
        pull = "never"
        max_concurrent = 8
        mounts = {{ "{target}" = "/salvage/target" }}
        secrets = {{ RESTIC_PASSWORD = "{password}" }}
        {env}
        """)
    )


def _stack(scene, count: int = 4, megabytes: int = 0) -> list:
    """`count` volumes used by one container; all but the first hold `megabytes` of random
    bytes, so that their backups are still going when the first one's ends."""
    volumes = [scene.volume(f"v{n}") for n in range(count)]
    for volume in volumes[1:] if megabytes else ():
        mountpoint = Path(scene.api.inspect_volume(volume)["Mountpoint"])
        with open(mountpoint / "random", "wb") as out:
            for _ in range(megabytes):
                out.write(os.urandom(1 << 20))
    scene.container("app", volumes, scene.label(*volumes))
    scene.snapshot()
    return volumes


def restic(scene, target, *args: str) -> subprocess.CompletedProcess:
    """restic itself, on the repository, as a user would check it."""
    password = scene.tmp / "restic-password"
    return subprocess.run(
        [
            "docker",
            "run",
            "--rm",
            "--network",
            "none",
            "-v",
            f"{target}:/t",
            "-v",
            f"{password}:/pw:ro",
            "-e",
            "RESTIC_PASSWORD_FILE=/pw",
            "-e",
            "RESTIC_REPOSITORY=/t/faults",
            "--entrypoint",
            "restic",
            RESTIC,
            *args,
        ],
        env=scene.env(),
        capture_output=True,
        text=True,
        timeout=300,
    )


def snapshots(scene, target) -> list:
    done = restic(scene, target, "snapshots", "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _volume_of(snapshot: dict) -> str:
    return next(t[len("volume=") :] for t in snapshot["tags"] if t.startswith("volume="))


def test_restic_cranes_at_once_on_a_new_repository(scene, table, restic_image):
    volumes = _stack(scene, count=8)
    target = scene.tmp / "repo"
    _use_restic(scene, target, concurrent=8)
    first = scene.salvage("run")
    _use_restic(scene, target, concurrent=1)
    later = [scene.salvage("run") for _ in range(2)]
    keys = list((target / "faults" / "keys").iterdir())
    check = restic(scene, target, "check")
    table(
        "restic: 8 cranes at once on a new repository, then 2 more runs",
        f"exit 0, 0, 0; 1 key; restic check ok; {CALM}",
        f"exit {first.returncode}, {later[0].returncode}, {later[1].returncode};"
        f" {len(keys)} key{'s' * (len(keys) != 1)};"
        f" restic check {'ok' if check.returncode == 0 else 'FAILED'}; {scene.observe()}",
    )
    saved = sorted(_volume_of(s) for s in snapshots(scene, target))
    assert saved == sorted(volumes * 3)


def test_restic_retention_with_cranes_at_once(scene, table, restic_image):
    volumes = _stack(scene, megabytes=40)
    target = scene.tmp / "repo"
    _use_restic(scene, target, concurrent=4, keep="1")
    runs = [scene.salvage("run") for _ in range(3)]
    kept = sorted(_volume_of(s) for s in snapshots(scene, target))
    table(
        "restic: RESTIC_KEEP_LAST=1, 4 volumes at once, 3 runs",
        f"exit 0, 0, 0; saved 4, 4, 4 of 4; 1 snapshot per volume; {CALM}",
        f"exit {', '.join(str(r.returncode) for r in runs)};"
        f" saved {', '.join(str(r.stderr.count('backed up in')) for r in runs)} of 4;"
        f" {len(kept) / len(volumes):g} snapshot per volume; {scene.observe()}",
    )
    assert kept == sorted(volumes)  # the newest of each volume, no other volume's


def test_restic_parent_is_the_volumes_own_snapshot(scene, table, restic_image):
    _stack(scene, count=3)
    target = scene.tmp / "repo"
    _use_restic(scene, target, concurrent=1)
    for _ in range(3):
        done = scene.salvage("run")
        assert done.returncode == 0, done.stderr
    found = sorted(snapshots(scene, target), key=lambda s: s["time"])
    own = {s["id"]: _volume_of(s) for s in found}
    parents = [s.get("parent") for s in found if s.get("parent")]
    wrong = [s["short_id"] for s in found if s.get("parent") and own[s["parent"]] != _volume_of(s)]
    table(
        "restic: 3 volumes in one repository, 3 runs: each backup's parent",
        "6 parents, each the same volume's snapshot",
        f"{len(parents)} parents, "
        + ("each the same volume's snapshot" if not wrong else f"{len(wrong)} another volume's"),
    )


# The restic crane with a restic that notes each time it runs in calls.log beside the
# repository (not on the crane's standard error: the crane redirects restic's): every
# command but `version` opens the repository (a key derivation and, mostly, a lock).
COUNTING = "salvage-test/crane-restic-counting:latest"
WRAPPER = """#!/bin/sh
echo "$SALVAGE_VOLUME_NAME $1" >> /salvage/target/calls.log
exec /usr/bin/restic "$@"
"""


def _run_counting(scene, target, volumes) -> tuple:
    """One run: (the run, for each volume the restic commands its crane ran)."""
    log = target / "calls.log"
    log.unlink(missing_ok=True)
    done = scene.salvage("run")
    calls = [line.split(" ", 1) for line in log.read_text().splitlines()]  # init: no volume
    return done, [[c for v, c in calls if v == volume] for volume in volumes]


def test_restic_backup_opens_the_repository_once(scene, table, restic_image):
    context = scene.tmp / "counting"
    context.mkdir()
    (context / "restic").write_text(WRAPPER)
    (context / "Dockerfile").write_text(
        f"FROM {RESTIC}\nCOPY restic /usr/local/bin/restic\nRUN chmod 0755 /usr/local/bin/restic\n"
    )
    subprocess.run(
        ["docker", "build", "-q", "-t", COUNTING, str(context)],
        check=True,
        env=scene.env(),
        stdout=subprocess.DEVNULL,
    )
    volumes = _stack(scene, count=2)
    target = scene.tmp / "repo"
    _use_restic(scene, target, concurrent=1, image=COUNTING)
    runs, calls = [], []
    for _ in range(3):
        done, called = _run_counting(scene, target, volumes)
        runs.append(done)
        calls.append(called)
    # This volume's newest snapshot is forgotten behind salvage's back: the next backup
    # looks its parent up instead.
    newest = max(
        (s for s in snapshots(scene, target) if _volume_of(s) == volumes[0]),
        key=lambda s: s["time"],
    )
    assert restic(scene, target, "forget", newest["id"]).returncode == 0
    done, called = _run_counting(scene, target, volumes)
    runs.append(done)
    calls.append(called)
    found = sorted(snapshots(scene, target), key=lambda s: s["time"])
    own = {s["id"]: _volume_of(s) for s in found}
    wrong = [
        s["short_id"] for s in found if s.get("parent") and own.get(s["parent"]) != _volume_of(s)
    ]
    parents = sum(1 for s in found if s.get("parent") in own)
    table(
        "restic: 2 volumes, 3 runs, then a snapshot forgotten behind salvage's back, a 4th run:"
        " restic commands each volume's backup runs",
        "exit 0, 0, 0, 0; run 1: snapshots+backup | snapshots+backup; run 2: backup | backup;"
        " run 3: backup | backup; run 4: backup+snapshots+backup | backup;"
        " 0 parents of another volume, 5 own",
        f"exit {', '.join(str(r.returncode) for r in runs)}; "
        + "; ".join(
            f"run {n + 1}: " + " | ".join("+".join(c) for c in run) for n, run in enumerate(calls)
        )
        + f"; {len(wrong)} parents of another volume, {parents} own",
    )
    assert [r.returncode for r in runs] == [0, 0, 0, 0], runs[-1].stderr
    assert calls[0] == [["snapshots", "backup"]] * 2  # nothing known yet: looked up
    assert calls[1] == calls[2] == [["backup"]] * 2
    assert calls[3] == [["backup", "snapshots", "backup"], ["backup"]]
    assert len(_lines(runs[3].stderr, "is not in the repository: looking up the newest")) == 1
    assert wrong == [] and parents == len(found) - 2  # each volume's first has none


def _lines(stderr: str, text: str) -> list:
    return [line for line in stderr.splitlines() if text in line]


def test_restic_wrong_password(scene, table, restic_image):
    (volume,) = _stack(scene, count=1)
    target = scene.tmp / "repo"
    _use_restic(scene, target)
    empty = scene.salvage("snapshots", volume)  # no repository yet: nothing, and fine
    assert empty.returncode == 0 and "no snapshots" in empty.stdout, empty.stderr
    assert scene.salvage("run").returncode == 0
    (scene.tmp / "restic-password").write_text("not the password")
    said = "wrong password for the repository at /salvage/target/faults"
    observed = []
    for args in (["run"], ["snapshots", volume], ["restore", volume, "--to", f"{volume}-copy"]):
        done = scene.salvage(*args)
        assert "github.com/" not in done.stderr and "already exists" not in done.stderr
        assert len(_lines(done.stderr, said)) == 1, done.stderr
        observed.append(f"{args[0]} exit {done.returncode}")
    keys = len(list((target / "faults" / "keys").iterdir()))
    table(
        "restic: wrong password (run, snapshots, restore)",
        f"run exit 1, snapshots exit 1, restore exit 1, each saying so once; 1 key; {CALM}",
        f"{', '.join(observed)}, each saying so once; {keys} key{'s' * (keys != 1)};"
        f" {scene.observe()}",
    )


def test_restic_full_disk(scene, table, restic_image):
    (volume,) = _stack(scene, count=1)
    target = scene.tmp / "repo"
    target.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(target)], check=True)
    try:
        _use_restic(scene, target)
        assert scene.salvage("run").returncode == 0
        with open(target / "filler", "wb") as filler:  # a real full disk
            try:
                while True:
                    filler.write(b"\0" * 65536)
            except OSError:
                pass
        said = "the disk of the repository at /salvage/target/faults is full"
        observed = []
        for args in (["run"], ["snapshots", volume], ["restore", volume, "--to", f"{volume}-c"]):
            done = scene.salvage(*args)
            assert "github.com/" not in done.stderr, done.stderr
            assert len(_lines(done.stderr, said)) == 1, done.stderr
            observed.append(f"{args[0]} exit {done.returncode}")
        table(
            "restic: the repository's disk is full (run, snapshots, restore)",
            f"run exit 1, snapshots exit 1, restore exit 1, each saying so once; {CALM}",
            f"{', '.join(observed)}, each saying so once; {scene.observe()}",
        )
    finally:
        subprocess.run(["umount", "-l", str(target)], check=False)
