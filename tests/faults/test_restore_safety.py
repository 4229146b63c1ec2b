"""Restore never destroys data it was not asked to replace: volumes whose driver options
bind a host directory, metadata from the backup store that lies, retention during a safety
backup, cranes that fail halfway. Each ends with what a user checks: the data that was not
to be replaced is byte for byte as before, every container as it was, nothing left."""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys
import textwrap
import time

import pytest
from support.debian import RESTIC_CRANE, crane_image
from support.harness import TAR_CRANE, archive_paths
from support.scene import CALM, LISTING, wait_for

from salvage.safety import restoring
from salvage.safety.record import Record

RESTIC = RESTIC_CRANE
UNTOUCHED = "host directory unchanged"


@pytest.fixture(scope="module")
def restic_crane(fault_engine):
    return crane_image(fault_engine.host, "restic", RESTIC)


def waiting(host: str, tmp, image: str, entrypoint: str) -> str:
    """`image`, whose backup waits for a go-ahead file in its target."""
    tag = image.replace(":latest", "-waiting:latest").replace("salvage/", "salvage-test/")
    (tmp / "Dockerfile").write_text(
        f"FROM {image}\n"
        'ENTRYPOINT ["/bin/sh", "-c", "[ \\"$SALVAGE_ACTION\\" != backup ] || { touch'
        " /salvage/target/started; while [ ! -e /salvage/target/go ]; do sleep 0.05; done; };"
        f' exec {entrypoint}"]\n'
    )
    subprocess.run(
        ["docker", "build", "-q", "-t", tag, str(tmp)],
        check=True,
        env=dict(os.environ, DOCKER_HOST=host),
        stdout=subprocess.DEVNULL,
    )
    return tag


def configure(scene, crane="tar", env="", script="", tar=TAR_CRANE, restic=RESTIC) -> None:
    """The scene's tide on the tar, restic or a script crane, writing under scene.out."""
    password = scene.tmp / "restic-password"
    password.write_text("correct horse battery staple")
    password.chmod(0o600)
    scene.config.write_text(
        textwrap.dedent(f"""
        machine = "faults"
        state_directory = "{scene.state}"
        [docker]
        retries = 6
        [tides.{scene.tide}]
        crane = "{crane}"
        [cranes.tar]
        image = "{tar}"
        pull = "never"
        mounts = {{ "{scene.out}" = "/salvage/target" }}
        env = {{ {env} }}
        [cranes.restic]
        image = "{restic}"
        pull = "never"
        mounts = {{ "{scene.out}" = "/salvage/target" }}
        secrets = {{ RESTIC_PASSWORD = "{password}" }}
        env = {{ {env} }}
        [cranes.script]
        image = "salvage-test/crane-script:latest"
        pull = "never"
        env = {{ CRANE_SCRIPT = '''{script}''' }}
        """)
    )


def host_dir(path) -> dict:
    """A host directory's files and bytes, as a user would compare them."""
    found = {}
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            full = os.path.join(root, name)
            data = open(full, "rb").read() if os.path.isfile(full) else b""
            found[os.path.relpath(full, path)] = hashlib.sha256(data).hexdigest()
    return found


def bind_volume(scene, name: str) -> tuple:
    """A local volume whose driver options bind a host directory holding live data."""
    directory = scene.tmp / f"host-{name}"
    directory.mkdir()
    (directory / "live").write_text("live data\n")
    volume = f"{scene.prefix}-{name}"
    scene.api.create_volume(
        volume, driver="local", driver_opts={"type": "none", "o": "bind", "device": str(directory)}
    )
    scene.volumes.append(volume)
    return volume, directory


def scratch_left(scene) -> str:
    mine = {"label": ["salvage.scratch", f"salvage.instance={scene.state}"]}
    found = scene.api.volumes(filters=mine).get("Volumes") or []
    return "no scratch volume left" if not found else f"{len(found)} scratch volume(s) left"


def content(scene, volume: str) -> str:
    return scene.run_once(volume, "cd /v && find . | sort && cat live data 2>/dev/null; true")


def next_second(since: float) -> None:
    """A tar snapshot is named after its run's second: the next one must be another."""
    wait_for(lambda: int(time.time()) > int(since), "the next second")


def test_restore_to_never_takes_the_originals_bind_device(scene, table):
    vol, directory = bind_volume(scene, "bound")
    scene.container("app", [vol], scene.label(vol))
    configure(scene)
    assert scene.salvage("run").returncode == 0
    (directory / "live").write_text("newer live data\n")  # what the app wrote since
    scene.snapshot()
    before = host_dir(directory)
    copy = f"{scene.prefix}-copy"
    done = scene.salvage("restore", vol, "--to", copy)
    observed = scene.observe()
    scene.volumes.append(copy)
    options = scene.api.inspect_volume(copy)["Options"]
    assert done.returncode == 0, done.stderr
    assert "live data" in content(scene, copy)  # the snapshot, in a volume of its own
    table(
        "restore --to from a volume bound to a host directory",
        f"exit 0; copy has no options; {UNTOUCHED}; {CALM}; no scratch volume left",
        f"exit {done.returncode}; copy has {'no options' if not options else options}; "
        f"{UNTOUCHED if host_dir(directory) == before else 'HOST DIRECTORY CHANGED'}; "
        f"{observed}; {scratch_left(scene)}",
    )


def test_restore_after_volume_rm_never_wipes_the_host_directory(scene, table):
    vol, directory = bind_volume(scene, "bound")
    configure(scene)
    scene.container("app", [vol], scene.label(vol))
    assert scene.salvage("run").returncode == 0
    scene.api.remove_container(scene.names.pop(), force=True)
    scene.api.remove_volume(vol)  # the host directory still holds the data
    (directory / "live").write_text("data written after the backup\n")
    before = host_dir(directory)
    done = scene.salvage("restore", vol)
    plain = scene.api.inspect_volume(vol)
    restored = content(scene, vol)
    scene.api.remove_volume(vol)
    trusted = scene.salvage("restore", vol, "--trust-meta-options")
    assert f"volume {vol}: creating it (driver local, options device={directory}" in trusted.stderr
    assert f"volume {vol} is not empty: not restoring over it without --force" in trusted.stderr
    table(
        "restore after `docker volume rm` of a volume bound to a host directory",
        f"exit 0 into a plain volume; --trust-meta-options: exit 1, not empty; {UNTOUCHED}",
        f"exit {done.returncode} into a "
        f"{'plain volume' if not plain['Options'] and 'live data' in restored else plain}; "
        f"--trust-meta-options: exit {trusted.returncode}, "
        f"{'not empty' if 'is not empty' in trusted.stderr else trusted.stderr}; "
        f"{UNTOUCHED if host_dir(directory) == before else 'HOST DIRECTORY CHANGED'}",
    )


def test_metadata_from_the_backup_store_is_untrusted(scene, table):
    vol = scene.volume("data")
    scene.container("app", [vol], scene.label(vol))
    configure(scene)
    assert scene.salvage("run").returncode == 0
    scene.api.remove_container(scene.names.pop(), force=True)
    scene.api.remove_volume(vol)
    victim = scene.tmp / "victim"
    victim.mkdir()
    (victim / "precious").write_text("someone else's data\n")
    before = host_dir(victim)
    # Whoever can write to the backup target rewrites the metadata.
    (meta_path,) = (scene.out / "faults" / vol).glob("*.meta.json")
    meta = json.loads(meta_path.read_text())
    meta["volume"]["options"] = {"type": "none", "o": "bind", "device": str(victim)}
    meta["volume"]["labels"] = {"salvage.scratch": "x", "salvage.instance": str(scene.state)}
    meta_path.write_text(json.dumps(meta))
    done = scene.salvage("restore", vol)
    assert "not used (creating it with driver local and no options" in done.stderr, done.stderr
    created = scene.api.inspect_volume(vol)
    recovered = scene.salvage("recover")  # a forged salvage.scratch label must not count
    exists = any(v["Name"] == vol for v in scene.api.volumes()["Volumes"])
    table(
        "metadata in the backup store asks for a bind to a host directory",
        f"exit 0; plain local volume, no salvage labels; kept by recover; {UNTOUCHED}",
        f"exit {done.returncode}; "
        + (
            "plain local volume"
            if created["Driver"] == "local" and not created["Options"]
            else f"{created['Driver']} {created['Options']}"
        )
        + (
            ", no salvage labels"
            if not any(k.startswith("salvage.") for k in created["Labels"] or {})
            else ", salvage labels"
        )
        + f"; {'kept' if exists and recovered.returncode == 0 else 'REMOVED'} by recover; "
        f"{UNTOUCHED if host_dir(victim) == before else 'HOST DIRECTORY CHANGED'}",
    )
    scene.volumes.remove(vol)
    scene.api.remove_volume(vol)


@pytest.mark.parametrize("crane", ["tar", "restic"])
def test_safety_backup_never_triggers_retention(scene, table, crane, request):
    if crane == "restic":
        request.getfixturevalue("restic_crane")
    vol = scene.volume("data")
    app = scene.container("app", [vol], scene.label(vol))
    configure(scene, crane, 'TAR_KEEP = "1", RESTIC_KEEP_LAST = "1"')
    started = time.time()
    assert scene.salvage("run").returncode == 0
    scene.snapshot()  # what the backup holds: what the restore must give back
    scene.run_once(vol, "echo changed > /v/data; echo new > /v/new")
    next_second(started)
    done = scene.salvage("restore", vol, "--force")
    listed = json.loads(scene.salvage("snapshots", vol, "--json").stdout)
    table(
        f"restore --force with retention ({crane}: keep 1)",
        f"exit 0; 2 snapshots; {CALM}",
        f"exit {done.returncode}; {len(listed)} snapshots; {scene.observe()}",
    )
    assert scene.state_of(app) == "running"


def halfway(scene) -> str:
    """A script crane that lists one snapshot, and whose restore empties its volume, writes
    half of it and fails."""
    return (
        'case "$SALVAGE_ACTION" in'
        ' list) echo "{\\"id\\": \\"s1\\", \\"time\\": \\"t\\"}";;'
        ' meta) echo "{\\"volume\\": {\\"name\\": \\"$SALVAGE_VOLUME_NAME\\"}}";;'
        " backup) true;;"
        " restore) find /salvage/volume -mindepth 1 -delete; echo half > /salvage/volume/h;"
        " exit 1;;"
        " esac"
    )


def test_a_crane_failing_halfway_leaves_the_target_as_it_was(scene, table):
    vol = scene.volume("data")
    scene.container("app", [vol], scene.label(vol))
    configure(scene, "script", script=halfway(scene))
    scene.snapshot()
    done = scene.salvage("restore", vol, "--force", "--snapshot", "latest")
    assert f"volume {vol} is unchanged" in done.stderr, done.stderr
    table(
        "restore --force with a crane that fails halfway",
        f"exit 1; {CALM}; no scratch volume left",
        f"exit {done.returncode}; {scene.observe()}; {scratch_left(scene)}",
    )


def test_a_damaged_restic_pack_leaves_the_target_as_it_was(scene, table, restic_crane):
    vol = scene.volume("data")
    scene.run_once(vol, "dd if=/dev/urandom of=/v/big bs=1024 count=8192 2>/dev/null")
    scene.container("app", [vol], scene.label(vol))
    configure(scene, "restic")
    assert scene.salvage("run").returncode == 0
    # The biggest pack holds the big file's chunks: damage one of them in the middle (the
    # snapshot's list and metadata stay readable).
    pack = max(
        (p for p in (scene.out / "faults" / "data").rglob("*") if p.is_file()),
        key=lambda p: p.stat().st_size,
    )
    with open(pack, "r+b") as stream:
        stream.seek(pack.stat().st_size // 3)
        stream.write(b"\0" * 4096)
    scene.run_once(vol, "echo changed > /v/data")
    scene.snapshot()
    done = scene.salvage("restore", vol, "--force")
    table(
        "restore --force over a damaged restic pack",
        f"exit 1; {CALM}; no scratch volume left",
        f"exit {done.returncode}; {scene.observe()}; {scratch_left(scene)}",
    )


@pytest.mark.parametrize("crane", ["tar", "restic"])
def test_a_snapshot_the_run_found_inconsistent_is_never_the_default(scene, table, crane, request):
    host = scene.engine.host
    if crane == "restic":
        image = waiting(
            host,
            scene.tmp,
            request.getfixturevalue("restic_crane"),
            "/usr/local/bin/salvage-crane-restic",
        )
        configure(scene, crane, restic=image)
    else:
        image = waiting(host, scene.tmp, TAR_CRANE, "/usr/local/bin/salvage-crane-tar")
        configure(scene, tar=image)
    # The classic way: a staged backup is taken before the containers come back, so a start
    # during its crane cannot make it inconsistent (test_staging.py).
    text = scene.config.read_text()
    scene.config.write_text(
        text.replace(f'crane = "{crane}"\n', f'crane = "{crane}"\nstaging = "never"\n', 1)
    )
    vol = scene.volume("data")
    app = scene.container("app", [vol], scene.label(vol))
    (scene.out / "go").touch()
    started = time.time()
    first = scene.salvage("run")
    assert first.returncode == 0, first.stderr
    good = json.loads(scene.salvage("snapshots", vol, "--json").stdout)[0]["id"]
    (scene.out / "go").unlink()
    (scene.out / "started").unlink()
    next_second(started)
    run = scene.start_run()
    wait_for(lambda: (scene.out / "started").exists(), "the crane")
    scene.run_once(vol, "echo written mid-backup > /v/data")
    scene.api.start(app)  # someone else, mid-backup
    (scene.out / "go").touch()
    _, stderr = run.communicate(timeout=120)
    assert "backup not consistent" in stderr, stderr
    listed = json.loads(scene.salvage("snapshots", vol, "--json").stdout)
    shown = scene.salvage("snapshots", vol).stdout
    copy = f"{scene.prefix}-copy"
    scene.volumes.append(copy)
    done = scene.salvage("restore", vol, "--to", copy)
    took = "the earlier snapshot" if f"snapshot {good} of" in done.stderr else done.stderr
    named = scene.salvage("restore", vol, "--to", f"{copy}2", "--snapshot", listed[0]["id"])
    scene.volumes.append(f"{copy}2")
    table(
        f"a snapshot taken while a container was started mid-backup ({crane})",
        "run exit 1; newest marked (NOT CONSISTENT); restore takes the earlier snapshot;"
        " restores it when named",
        f"run exit {run.returncode}; newest "
        + ("marked" if not listed[0]["consistent"] and listed[1]["consistent"] else "NOT marked")
        + f" ({'NOT CONSISTENT' if 'NOT CONSISTENT' in shown.splitlines()[0] else shown})"
        f"; restore takes {took}; {'restores it' if named.returncode == 0 else named.stderr}"
        " when named",
    )


def test_a_killed_tar_crane_leaves_no_partial_after_the_next_backup(scene, table):
    vol = scene.volume("data")
    # Enough bytes that no compression helps, so that the crane is still writing when killed.
    scene.run_once(vol, "dd if=/dev/urandom of=/v/big bs=1M count=100 2>/dev/null")
    scene.container("app", [vol], scene.label(vol))
    configure(scene)
    scene.snapshot()
    archives = scene.out / "faults" / vol
    run = scene.start_run()
    wait_for(lambda: list(archives.glob(".*.partial")), "the crane's partial archive")
    scene.kill(run)
    assert scene.salvage("recover").returncode == 0  # removes the crane mid-write
    left = [p.name for p in archives.glob(".*.partial")]
    done = scene.salvage("run")
    after = [p.name for p in archives.glob(".*")]
    table(
        "a tar crane killed mid-backup, then the next run",
        f"a partial left; next run exit 0; no partial left; {CALM}",
        f"{'a partial' if left else 'no partial'} left; next run exit {done.returncode}; "
        f"{'no partial left' if not after else after}; {scene.observe()}",
    )


def test_sigkill_while_a_restore_replaces_the_content(scene, table):
    vol = scene.volume("data")
    # Enough bytes that the copy onto the target takes a while.
    scene.run_once(vol, "dd if=/dev/urandom of=/v/big bs=1M count=300 2>/dev/null")
    app = scene.container("app", [vol], scene.label(vol))
    configure(scene)
    assert scene.salvage("run").returncode == 0
    scene.snapshot()  # the backup: what the finished restore must give back
    scene.run_once(vol, "echo changed > /v/data; rm /v/big")
    restore = subprocess.Popen(
        [sys.executable, "-m", "salvage", "-c", str(scene.config), "restore", vol, "--force"],
        env=scene.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )

    def copying() -> bool:
        mine = {"label": f"salvage.instance={scene.state}"}
        return any("cp -a" in c["Command"] for c in scene.api.containers(filters=mine))

    wait_for(copying, "the copy onto the target", timeout=120)
    scene.kill(restore)
    recovered = scene.salvage("recover")
    held = scene.state_of(app)
    errors = [line for line in recovered.stderr.splitlines() if "interrupted" in line]
    status = scene.salvage("status").stdout
    archives = archive_paths(scene.out / "faults" / vol)
    run = scene.salvage("run")  # the half-restored volume is not backed up
    skipped = "half restored: not backed up" in run.stderr
    skipped &= archives == archive_paths(scene.out / "faults" / vol)
    again = scene.salvage("restore", vol, "--force")
    table(
        "SIGKILL while a restore replaces a volume's content, recover, run, the same restore",
        "recover exit 1, app held exited, 1 error line; status shows it; run exit 1, not"
        f" backed up; restore again exit 0; {CALM}; no scratch volume left",
        f"recover exit {recovered.returncode}, app held {held}, {len(errors)} error line; "
        f"status {'shows it' if 'restore interrupted' in status else 'does not show it'}; "
        f"run exit {run.returncode}, {'not backed up' if skipped else 'BACKED UP'}; "
        f"restore again exit {again.returncode}; {scene.observe()}; {scratch_left(scene)}",
    )
    assert errors[0].startswith(f"error: recover: volume {vol}: a restore of snapshot "), errors


def test_random_kills_of_run_and_restore(scene, table):
    """20 SIGKILLs at random moments of `salvage run`, `restore --force` and `restore --to`,
    each then `recover` or the next run, and the same restore again when the record says it
    was interrupted while replacing the content."""
    vol, still = scene.volume("data"), scene.volume("still")
    # Enough bytes that a backup, the scratch restore and the copy each take a moment.
    scene.run_once(vol, "dd if=/dev/urandom of=/v/big bs=1M count=48 2>/dev/null")
    users = [scene.container("app", [vol], scene.label(vol))]
    scene.container("keeper", [still], scene.label(still))  # never restored
    users.append(
        scene.container(
            "side",
            [vol],
            {"salvage.action": "pause", "salvage.command.post": "touch /signals/post"},
        )
    )
    configure(scene)
    empty = ".\n"

    def digest(volume: str) -> str:
        if not any(v["Name"] == volume for v in scene.api.volumes()["Volumes"] or []):
            return empty  # a restore --to killed before it created its volume
        return scene.run_once(volume, LISTING)

    started = time.time()
    assert scene.salvage("run").returncode == 0
    snap = json.loads(scene.salvage("snapshots", vol, "--json").stdout)[0]["id"]
    scene.snapshot()  # containers, and the volumes as the snapshot holds them
    states, of_snapshot, of_still = scene.before[0], digest(vol), digest(still)
    next_second(started)  # no later backup takes the snapshot's name

    def copying() -> bool:
        mine = {"label": f"salvage.instance={scene.state}"}
        return any("cp -a" in c["Command"] for c in scene.api.containers(filters=mine))

    chance = random.Random()
    seed = int(os.environ.get("SALVAGE_TEST_SEED") or chance.randrange(10**6))  # to replay
    chance.seed(seed)
    kinds = ["run"] * 8 + ["restore"] * 8 + ["restore --to"] * 4
    chance.shuffle(kinds)
    broken, live, mid_copy, finished = [], 0, 0, 0
    for number, kind in enumerate(kinds):
        target, args = vol, ["restore", vol, "--force", "--snapshot", snap]
        if kind == "restore --to":
            target = f"{scene.prefix}-copy{number}"
            args = ["restore", vol, "--to", target, "--snapshot", snap]
        elif kind == "restore" and digest(vol) == of_snapshot:
            scene.run_once(vol, f"echo changed {number} > /v/data")  # what to replace
        prior, original = digest(target), digest(vol)
        command = ["run"] if kind == "run" else args
        proc = subprocess.Popen(
            [sys.executable, "-m", "salvage", "-c", str(scene.config), *command],
            env=scene.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        if kind != "run" and chance.random() < 0.5:  # a random moment of the copy itself
            wait_for(lambda p=proc: copying() or p.poll() is not None, "the copy", timeout=120)
            time.sleep(chance.uniform(0, 0.1))
        else:
            time.sleep(chance.uniform(0.2, 4))  # a random moment is the fault itself
        live += proc.poll() is None
        scene.kill(proc)
        after = scene.salvage("recover" if number % 2 else "run")
        assert after.returncode in (0, 1) and "Traceback" not in after.stderr, after.stderr
        held = []
        if restoring.of(Record(str(scene.state)).entries(), target):
            mid_copy += 1
            held = [n for n in users if kind == "restore" and scene.state_of(n) != "exited"]
            again = scene.salvage(*args)  # the same restore finishes it
            assert again.returncode == 0 and "Traceback" not in again.stderr, again.stderr
        now = digest(target)
        if now != empty and target not in scene.volumes:
            scene.volumes.append(target)  # a copy: removed by the scene's cleanup
        if kind != "run":
            finished += now == of_snapshot
        allowed = {prior} if kind == "run" else {prior, of_snapshot}
        notes = [] if now in allowed else [f"{target} neither as before nor the snapshot"]
        notes += [f"{', '.join(held)} started on a half-restored volume"] if held else []
        if scene.states() != states:
            notes.append(f"containers {scene.states()}")
        if digest(still) != of_still:
            notes.append(f"{still} (never restored) CHANGED")
        if kind == "restore --to" and digest(vol) != original:
            notes.append(f"{vol} CHANGED by a restore --to another volume")
        leftovers = scene.api.containers(all=True, filters={"label": "salvage.crane"})
        notes += [f"{len(leftovers)} crane(s) left"] if leftovers else []
        notes += [] if scratch_left(scene) == "no scratch volume left" else [scratch_left(scene)]
        notes += ["record holds entries"] if Record(str(scene.state)).entries() else []
        broken += [f"kill {number} ({kind}): {', '.join(notes)}"] if notes else []
    calm = (
        "every time: containers as before (ids too); untargeted volumes unchanged;"
        " targets as before or the snapshot; a cut copy's users down until it is run again;"
        " no crane or scratch volume left; record empty"
    )
    count = ", ".join(f"{kinds.count(k)} of {k}" for k in ("run", "restore", "restore --to"))
    table(
        f"20 SIGKILLs at random moments (seed {seed}: {count}; {live} of a live process,"
        f" {mid_copy} mid-copy, then finished; {finished} restores complete), each then"
        " recover or the next run",
        calm,
        "; ".join(broken) or calm,
    )
