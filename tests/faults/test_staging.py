"""Staging (tide `staging`): the containers are down only while each volume is copied to a
stage volume; the crane backs up the stage once they are back. On the fault suite's engine,
with a crane image that has GNU cp (Debian) and the busybox one that has not."""

from __future__ import annotations

import hashlib
import os
import random
import signal
import stat
import struct
import subprocess
import time
from pathlib import Path

import pytest
from support.debian import GNU_TAR_CRANE, crane_image, debian_image
from support.harness import SCRIPT_CRANE, build_images
from support.loop_dockerd import LoopDockerd
from support.scene import CALM, Scene, wait_for
from test_restic import _use_restic, restic_image  # noqa: F401  (a fixture)
from test_socket_proxy import proxy  # noqa: F401  (a fixture)

GNU_SCRIPT = "salvage-test/crane-script-gnu:latest"
# The same without rsync: the whole copy is made while the containers are down.
GNU_SCRIPT_COPY = "salvage-test/crane-script-gnu-copy:latest"


def build_gnu_crane(engine, rsync: bool = True) -> str:
    """The script crane (CRANE_SCRIPT under sh) on a Debian base: GNU cp, so it can stage;
    with rsync (and GNU find) it fills the stage with the containers up."""
    base = debian_image(engine.host)
    tag = GNU_SCRIPT if rsync else GNU_SCRIPT_COPY
    context = Path(engine.base) / tag.split("/")[1].split(":")[0]
    context.mkdir(exist_ok=True)
    (context / "Dockerfile").write_text(
        f"FROM {base}\nRUN mkdir -p /salvage/volume /salvage/meta"
        + ("" if rsync else " && rm /usr/bin/rsync")
        + '\nENTRYPOINT ["/bin/sh", "-c", "eval \\"$CRANE_SCRIPT\\""]\n'
    )
    env = dict(os.environ, DOCKER_HOST=engine.host)
    subprocess.run(
        ["docker", "build", "-q", "-t", tag, str(context)],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    return tag


@pytest.fixture(scope="session")
def gnu_crane(fault_engine):
    return build_gnu_crane(fault_engine)


@pytest.fixture(scope="session")
def gnu_copy_crane(fault_engine):
    return build_gnu_crane(fault_engine, rsync=False)


@pytest.fixture(scope="module")
def small_engine():
    """An engine whose data root is a 900 MB file system: room for the images, not for a
    copy of a 350 MB volume beside it (ext4 has no reflinks)."""
    engine = LoopDockerd("ext4", 900, bridge=f"slvs{os.getpid() % 100000}")
    try:
        engine.start()
        build_images(engine.host)
        build_gnu_crane(engine)
    except (RuntimeError, subprocess.CalledProcessError) as error:
        engine.remove()
        pytest.fail(str(error))
    yield engine
    engine.remove()


def _on_gnu(scene, extra: str = "", image: str = GNU_SCRIPT) -> None:
    scene.config = scene.write_config(tide_extra=extra)
    scene.config.write_text(scene.config.read_text().replace(SCRIPT_CRANE, image))


def _acl(*entries) -> bytes:
    """A POSIX ACL as the kernel stores it in system.posix_acl_access (what setfacl sets)."""
    return struct.pack("<I", 2) + b"".join(struct.pack("<HHI", *e) for e in entries)


def _fill(mountpoint: Path) -> None:
    """What a copy can lose: owners, modes, times, a hard link, a symlink, a user xattr, an
    ACL, a sparse file, an empty directory of its own."""
    (mountpoint / "owned").write_bytes(b"owned by 1000\n")
    os.chown(mountpoint / "owned", 1000, 1000)
    os.chmod(mountpoint / "owned", 0o640)
    os.link(mountpoint / "owned", mountpoint / "hardlink")
    os.symlink("owned", mountpoint / "symlink")
    (mountpoint / "xattr").write_bytes(b"attributes\n")
    os.setxattr(mountpoint / "xattr", "user.salvage", b"kept")
    (mountpoint / "acl").write_bytes(b"acl\n")
    undefined = 0xFFFFFFFF
    os.setxattr(
        mountpoint / "acl",
        "system.posix_acl_access",
        _acl(
            (0x01, 6, undefined),
            (0x02, 4, 1234),
            (0x04, 4, undefined),
            (0x10, 4, undefined),
            (0x20, 0, undefined),
        ),
    )
    with open(mountpoint / "sparse", "wb") as out:
        out.truncate(64 << 20)
        out.seek(32 << 20)
        out.write(b"middle")
    (mountpoint / "empty").mkdir(mode=0o700)
    os.chown(mountpoint / "empty", 123, 456)
    for name in ("owned", "xattr", "acl", "sparse", "empty"):
        os.utime(mountpoint / name, ns=(1_600_000_000_123_456_789, 1_500_000_000_987_654_321))


def manifest(root: Path) -> dict:
    """Per path: type, mode, owner, size, mtime, link target, xattrs, sha256, hard-link
    group, and for regular files whether they are sparse (fewer blocks than bytes)."""
    found, inodes = {}, {}
    for path in sorted([root, *root.rglob("*")]):
        info = os.lstat(path)
        entry = [info.st_mode, info.st_uid, info.st_gid]
        if not path.is_symlink():
            entry += [info.st_mtime_ns]
            entry += sorted((a, os.getxattr(path, a)) for a in os.listxattr(path))
        if path.is_symlink():
            entry.append(os.readlink(path))
        elif path.is_file():
            entry += [
                info.st_size,
                hashlib.sha256(path.read_bytes()).hexdigest(),
                info.st_blocks * 512 < info.st_size,
            ]
            entry.append(inodes.setdefault(info.st_ino, str(path.relative_to(root))))
        found[str(path.relative_to(root))] = entry
    return found


def _stages(scene) -> list:
    mine = {"label": ["salvage.stage", f"salvage.instance={scene.state}"]}
    return [v["Name"] for v in scene.api.volumes(filters=mine)["Volumes"] or []]


def _stagers(scene, volume: str = "") -> list:
    """Stagers (of `volume`: copying it, not the run's probe of the crane image)."""
    label = f"salvage.stage={volume}" if volume else "salvage.stage"
    return scene.api.containers(all=True, filters={"label": label})


def _copying(scene, vol: str, app: str, tool: str = "cp -a") -> bool:
    """The app is down and the stager copies its volume (with `tool`)."""
    return scene.state_of(app) == "exited" and any(
        tool in " ".join(p[-1:]) for s in _stagers(scene, vol) for p in _top(scene, s["Id"])
    )


def _top(scene, container: str) -> list:
    try:
        return scene.api.top(container)["Processes"] or []
    except Exception:  # gone meanwhile, or not running yet
        return []


@pytest.mark.boundary
def test_staged_backup_keeps_everything_and_containers_are_up_while_the_crane_runs(
    scene, gnu_crane, table
):
    vol = scene.volume("data")
    mountpoint = Path(scene.api.inspect_volume(vol)["Mountpoint"])
    _fill(mountpoint)
    app = scene.container("app", [vol], scene.label(vol))
    started = scene.api.inspect_container(app)["State"]["StartedAt"]
    scene.snapshot()
    _on_gnu(scene)
    run = scene.start_run()
    scene.crane_started(vol)  # the crane has started (it waits for the go-ahead)
    state = scene.api.inspect_container(app)["State"]
    up = state["Status"] == "running" and state["StartedAt"] > started  # stopped, started
    scene.go()
    _, stderr = run.communicate(timeout=120)
    assert run.returncode == 0, stderr
    assert f"volume {vol}: staged in" in stderr and "from its stage, containers up" in stderr
    copy = scene.out / f"{vol}.copy"  # the crane's own `cp -a` of /salvage/volume
    same = manifest(copy) == manifest(mountpoint)
    assert manifest(copy) == manifest(mountpoint)
    table(
        "staged backup (GNU cp): crane sees owners, modes, times, hard link, symlink, xattr,"
        " ACL, sparse file",
        f"containers up while the crane runs; identical; no stage left; {CALM}",
        f"containers {'up' if up else 'DOWN'} while the crane runs;"
        f" {'identical' if same else 'DIFFERENT'};"
        f" {'no stage left' if not _stages(scene) else 'stage left'}; {scene.observe()}",
    )


# An app that keeps changing its volume's 400 MB file (a new ctime each time): the live copy
# does not spare the copy while it is down.
HOT = ("sh", "-c", "trap 'exit 0' TERM; while :; do touch /data/random; sleep 0.2; done")


def _random_file(mountpoint: Path, megabytes: int) -> None:
    with open(mountpoint / "random", "wb") as out:
        for _ in range(megabytes):
            out.write(os.urandom(1 << 20))


def _kill_then_recover(
    scene, table, fault: str, phase: str, app: str, reached, app_state, stages: int = 1
):
    """SIGKILL the staged run under way once `reached()`, then `salvage recover`: the row
    says whether the kill came in `phase` (the app `app_state`, `stages` stages there), and
    what is left. recover's own output, for more checks."""
    run = scene.start_run()
    reached()
    scene.kill(run)
    during = scene.state_of(app) == app_state and len(_stages(scene)) == stages
    done = scene.salvage("recover")
    assert done.returncode == 0, done.stderr
    left = f"{len(_stages(scene))} stage(s), {len(_stagers(scene))} stager(s) left"
    table(
        fault,
        f"killed {phase}; 0 stage(s), 0 stager(s) left; {CALM}",
        f"{'killed' if during else 'NOT killed'} {phase}; {left}; {scene.observe()}",
    )
    return done.stderr


def test_sigkill_during_staging_then_recover(scene, gnu_crane, table):
    vol = scene.volume("data")
    _random_file(Path(scene.api.inspect_volume(vol)["Mountpoint"]), 400)  # caught in the act
    app = scene.container("app", [vol], scene.label(vol), command=HOT)
    scene.snapshot()
    _on_gnu(scene)
    # The live copy runs with the containers up; what changed since, once they are down.
    said = _kill_then_recover(
        scene,
        table,
        "SIGKILL while a volume is being staged (what changed since the live copy), then"
        " `salvage recover`",
        "mid-staging",
        app,
        lambda: wait_for(lambda: _copying(scene, vol, app, "rsync"), "the copy", timeout=120),
        "exited",
    )
    assert "recover: removed leftover stage volume salvage-stage-" in said


def test_sigkill_during_the_live_copy_then_recover(scene, gnu_crane, table):
    vol = scene.volume("data")
    _random_file(Path(scene.api.inspect_volume(vol)["Mountpoint"]), 400)
    app = scene.container("app", [vol], scene.label(vol))
    scene.snapshot()
    _on_gnu(scene)
    live = lambda: scene.state_of(app) == "running" and _copying_live(scene, vol)  # noqa: E731
    _kill_then_recover(
        scene,
        table,
        "SIGKILL during the live copy to a stage (containers up), then `salvage recover`",
        "during the live copy",
        app,
        lambda: wait_for(live, "the live copy", timeout=120),
        "running",
    )


def _copying_live(scene, vol: str) -> bool:
    return any(
        "cp -a" in " ".join(p[-1:]) for s in _stagers(scene, vol) for p in _top(scene, s["Id"])
    )


# An app that changes its volume in every way a copy can miss until it is stopped, then
# never again (its own file system remembers it ran): the stage must be the volume as it
# was at the stop. `same` is rewritten with its size and mtime kept: only its ctime shows it.
CHURN = r"""
[ -e /ran ] && exec sleep 3600
touch /ran
cd /data || exit 1
trap 'exit 0' TERM
i=0
while :; do
    i=$((i + 1))
    printf '%08d\n' $i > same && touch -r ref same
    printf '%s\n' $i > "new-$((i % 7))"
    rm -f "new-$(((i + 3) % 7))"
    mv -f "new-$(((i + 5) % 7))" "moved-$((i % 5))" 2>/dev/null
    ln -f same "link-$((i % 3))"
    chmod $((i % 2 * 44 + 600)) same
    mkdir -p "dir-$((i % 4))/sub" && printf x > "dir-$((i % 4))/sub/f$i"
    rm -rf "dir-$(((i + 2) % 4))"
done
"""


def test_a_volume_changing_under_the_live_copy_is_staged_as_it_was_at_the_stop(
    scene, gnu_crane, table
):
    vol = scene.volume("data")
    mountpoint = Path(scene.api.inspect_volume(vol)["Mountpoint"])
    (mountpoint / "ref").write_bytes(b"")
    os.utime(mountpoint / "ref", ns=(1_500_000_000_000_000_000, 1_500_000_000_000_000_000))
    (mountpoint / "same").write_bytes(b"00000000\n")
    with open(mountpoint / "big", "wb") as out:  # a live copy that takes a while
        for _ in range(64):
            out.write(os.urandom(1 << 20))
    app = scene.container("app", [vol], scene.label(vol), command=("sh", "-c", CHURN))
    _on_gnu(scene)
    scene.go()
    done = scene.salvage("run")
    assert done.returncode == 0, done.stderr
    way = "what changed since a live copy" in done.stderr
    same = manifest(scene.out / f"{vol}.copy") == manifest(mountpoint)
    changed = (mountpoint / "same").read_bytes() != b"00000000\n"
    assert way and changed and same, done.stderr
    table(
        "a volume changed in every way (a rewrite keeping size and mtime, renames, hard"
        " links, modes, trees) under the live copy",
        "staged from a live copy; the backup is the volume at the stop; app running",
        f"{'staged from a live copy' if way else 'NOT from a live copy'};"
        f" {'the backup is the volume at the stop' if same else 'backup DIFFERS from the volume'};"
        f" app {scene.state_of(app)}",
    )


@pytest.mark.usefixtures("gnu_crane")
def test_a_staged_run_passes_the_socket_proxy(scene, proxy, table):  # noqa: F811
    vol = scene.volume("data")
    scene.container("app", [vol], scene.label(vol))
    scene.snapshot()
    _on_gnu(scene)
    scene.go()
    host = proxy()
    done = scene.salvage("run", DOCKER_HOST=host)
    staged = f"volume {vol}: staged in" in done.stderr and "not staged" not in done.stderr
    recovered = scene.salvage("recover", DOCKER_HOST=host)
    table(
        "a staged run behind the socket proxy `salvage proxy-config` prints",
        f"exit 0; staged; no stage left; recover exit 0; {CALM}",
        f"exit {done.returncode}; {'staged' if staged else 'NOT staged'};"
        f" {'no stage left' if not _stages(scene) else 'stage left'};"
        f" recover exit {recovered.returncode}; {scene.observe()}",
    )


@pytest.mark.boundary
def test_sigterm_during_staging_unwinds(scene, gnu_copy_crane, table):
    vol = scene.volume("data")
    _random_file(Path(scene.api.inspect_volume(vol)["Mountpoint"]), 400)
    app = scene.container("app", [vol], scene.label(vol))
    scene.snapshot()
    _on_gnu(scene, image=gnu_copy_crane)
    run = scene.start_run()
    # The stager is started with the containers up; the copy runs once they are down.
    wait_for(lambda: _copying(scene, vol, app), "the copy", timeout=120)
    stderr = scene.kill(run, signal.SIGTERM)
    crane = "crane ran" if (scene.out / f"{vol}.started").exists() else "no crane ran"
    left = f"{len(_stages(scene))} stage(s), {len(_stagers(scene))} stager(s) left"
    assert "interrupted (SIGTERM)" in stderr, stderr
    table(
        "SIGTERM while a volume is being staged (no recover)",
        f"exit 1; no crane ran; 0 stage(s), 0 stager(s) left; {CALM}",
        f"exit {run.returncode}; {crane}; {left}; {scene.observe()}",
    )


def test_sigkill_during_the_staged_crane_then_recover(scene, gnu_crane, table):
    vol = scene.volume("data")
    app = scene.container("app", [vol], scene.label(vol))
    scene.snapshot()
    _on_gnu(scene)
    _kill_then_recover(
        scene,
        table,
        "SIGKILL while the crane backs up a stage (containers up), then `salvage recover`",
        "in the crane phase",
        app,
        lambda: scene.crane_started(vol),
        "running",
    )


def test_sigkill_during_the_tides_retention_then_recover(scene, gnu_crane, table):
    """The crane's tide-wide retention runs once the groups are back and their stages gone."""
    context = Path(scene.engine.base) / "crane-script-gnu-retention"
    context.mkdir(exist_ok=True)
    (context / "Dockerfile").write_text(
        f'FROM {gnu_crane}\nLABEL salvage.crane.actions="retention"\n'
    )
    image = "salvage-test/crane-script-gnu-retention:latest"
    subprocess.run(
        ["docker", "build", "-q", "-t", image, str(context)],
        check=True,
        env=scene.env(),
        stdout=subprocess.DEVNULL,
    )
    vol = scene.volume("data")
    app = scene.container("app", [vol], scene.label(vol))
    scene.snapshot()
    _on_gnu(scene, image=image)
    waits = '[ "$SALVAGE_ACTION" = retention ] && { touch /out/retention; sleep 600; }; '
    text = scene.config.read_text()
    scene.config.write_text(text.replace("CRANE_SCRIPT = '", f"CRANE_SCRIPT = '{waits}"))
    scene.go()  # the backups do not wait
    retention = scene.out / "retention"
    _kill_then_recover(
        scene,
        table,
        "SIGKILL during the tide's retention (containers up, stages gone), then `salvage recover`",
        "during the retention",
        app,
        lambda: wait_for(retention.exists, "the retention", timeout=120),
        "running",
        stages=0,
    )


def test_auto_without_gnu_cp_falls_back_with_one_line(scene, table):
    vol = scene.volume("data")
    scene.container("app", [vol], scene.label(vol))
    scene.snapshot()
    scene.go()
    done = scene.salvage("run")  # the busybox script crane: no GNU cp, cannot stage
    notices = done.stderr.count("not staged (")
    saved = (scene.out / f"{vol}.copy" / "data").exists()
    table(
        "staging = auto, the crane image cannot stage (busybox cp)",
        f"exit 0; 1 notice(s); backed up; {CALM}",
        f"exit {done.returncode}; {notices} notice(s); {'backed up' if saved else 'NOT saved'};"
        f" {scene.observe()}",
    )


def test_always_fails_a_volume_it_cannot_stage_and_brings_the_containers_back(scene, table):
    vol = scene.volume("data")
    scene.container("app", [vol], scene.label(vol))
    scene.snapshot()
    scene.config = scene.write_config(tide_extra='staging = "always"')
    scene.go()
    done = scene.salvage("run")
    failed = f"volume {vol}: cannot be staged (staging = always)" in done.stderr
    saved = (scene.out / f"{vol}.copy").exists()
    table(
        "staging = always, the crane image cannot stage (busybox cp)",
        f"exit 1; volume failed; not backed up; {CALM}",
        f"exit {done.returncode}; {'volume failed' if failed else 'NOT failed'};"
        f" {'BACKED UP' if saved else 'not backed up'}; {scene.observe()}",
    )


@pytest.fixture(scope="module")
def xfs_engine():
    """An engine whose data root is XFS (reflinks) on a loop-mounted 3 GB file."""
    engine = LoopDockerd("xfs", 3072, bridge=f"slvx{os.getpid() % 100000}")
    try:
        engine.start()
        build_images(engine.host)
        build_gnu_crane(engine)
    except (RuntimeError, subprocess.CalledProcessError) as error:
        engine.remove()
        pytest.fail(str(error))
    yield engine
    engine.remove()


def test_on_xfs_a_stage_shares_the_volumes_blocks(xfs_engine, tmp_path, table):
    scene = Scene(xfs_engine, tmp_path)
    try:
        vol = scene.volume("data")
        with open(Path(scene.api.inspect_volume(vol)["Mountpoint"]) / "random", "wb") as out:
            for _ in range(1024):
                out.write(os.urandom(1 << 20))
        scene.container("app", [vol], scene.label(vol))
        scene.snapshot()
        _on_gnu(scene)
        root = xfs_engine.base / "root"
        free = os.statvfs(root).f_bavail * os.statvfs(root).f_frsize
        run = scene.start_run()
        scene.crane_started(vol)  # the 1 GB stage exists while its crane waits
        used = free - os.statvfs(root).f_bavail * os.statvfs(root).f_frsize
        scene.go()
        _, stderr = run.communicate(timeout=300)
        reflink = f"volume {vol}: staged in" in stderr and "(reflink)" in stderr
        table(
            "a 1 GB volume staged on an XFS data root",
            f"exit 0; reflinks; stage uses < 64 MiB; no stage left; {CALM}",
            f"exit {run.returncode}; {'reflinks' if reflink else 'NO reflinks'};"
            f" stage uses {'< 64 MiB' if used < 64 << 20 else f'{used >> 20} MiB'};"
            f" {'no stage left' if not _stages(scene) else 'stage left'}; {scene.observe()}",
        )
    finally:
        scene.cleanup()


def test_auto_falls_back_when_the_stage_does_not_fit(small_engine, tmp_path, table):
    scene = Scene(small_engine, tmp_path)
    try:
        vol = scene.volume("data")
        with open(Path(scene.api.inspect_volume(vol)["Mountpoint"]) / "random", "wb") as out:
            for _ in range(350):
                out.write(os.urandom(1 << 20))
        scene.container("app", [vol], scene.label(vol))
        scene.snapshot()
        _on_gnu(scene)
        scene.go()
        done = scene.salvage("run")
        notices = [line for line in done.stderr.splitlines() if "not staged (" in line]
        assert len(notices) == 1 and "no room for a copy" in notices[0], done.stderr
        saved = (scene.out / f"{vol}.copy" / "random").exists()
        table(
            "staging = auto, no room for a stage (a copy of 350 MB on a 900 MB ext4 data root)",
            f"exit 0; 1 notice(s); backed up; no stage left; {CALM}",
            f"exit {done.returncode}; {len(notices)} notice(s);"
            f" {'backed up' if saved else 'NOT saved'};"
            f" {'no stage left' if not _stages(scene) else 'stage left'}; {scene.observe()}",
        )
    finally:
        scene.cleanup()


def test_always_fails_a_volume_whose_copy_fills_the_disk(small_engine, tmp_path, table):
    """`always` skips the room check: the copy itself fails, the containers down; that
    volume fails, and they come back."""
    scene = Scene(small_engine, tmp_path)
    try:
        vol = scene.volume("data")
        with open(Path(scene.api.inspect_volume(vol)["Mountpoint"]) / "random", "wb") as out:
            for _ in range(350):
                out.write(os.urandom(1 << 20))
        scene.container("app", [vol], scene.label(vol))
        scene.snapshot()
        _on_gnu(scene, 'staging = "always"')
        scene.go()
        done = scene.salvage("run")
        lines = [line for line in done.stderr.splitlines() if "cannot be staged" in line]
        failed = len(lines) == 1 and "No space left on device" in lines[0]
        assert failed, done.stderr
        saved = (scene.out / f"{vol}.copy").exists()
        table(
            "staging = always, the copy fills the disk while the containers are down (350 MB"
            " on a 900 MB ext4 data root)",
            f"exit 1; volume failed (no space); not backed up; no stage left; {CALM}",
            f"exit {done.returncode}; {'volume failed (no space)' if failed else 'NOT failed'};"
            f" {'BACKED UP' if saved else 'not backed up'};"
            f" {'no stage left' if not _stages(scene) else 'stage left'}; {scene.observe()}",
        )
    finally:
        scene.cleanup()


def kept(root: Path) -> dict:
    """The manifest but for sparseness: restic's restore writes a sparse file out in full."""
    return {
        path: entry[:-2] + entry[-1:] if len(entry) > 5 and isinstance(entry[-2], bool) else entry
        for path, entry in manifest(root).items()
    }


@pytest.mark.usefixtures("restic_image")
def test_restic_round_trip_through_a_stage(scene, table):
    vol = scene.volume("data")
    mountpoint = Path(scene.api.inspect_volume(vol)["Mountpoint"])
    _fill(mountpoint)
    scene.container("app", [vol], scene.label(vol))
    scene.snapshot()
    _use_restic(scene, scene.tmp / "repo")
    done = scene.salvage("run")
    assert done.returncode == 0 and f"volume {vol}: staged in" in done.stderr, done.stderr
    copy = f"{vol}-copy"
    restored = scene.salvage("restore", vol, "--to", copy)
    try:
        assert restored.returncode == 0, restored.stderr
        after = kept(Path(scene.api.inspect_volume(copy)["Mountpoint"]))
    finally:
        scene.api.remove_volume(copy, force=True)

    same = after == kept(mountpoint)
    assert after == kept(mountpoint)
    table(
        "restic through a stage, then `salvage restore --to`: owners, modes, times, hard"
        " link, symlink, xattr, ACL, the sparse file's bytes",
        f"staged; restored identical; no stage left; {CALM}",
        f"staged; restored {'identical' if same else 'DIFFERENT'};"
        f" {'no stage left' if not _stages(scene) else 'stage left'}; {scene.observe()}",
    )


def test_tar_round_trip_through_a_stage(scene, table):
    image = crane_image(scene.engine.host, "tar", GNU_TAR_CRANE)
    vol = scene.volume("data")
    mountpoint = Path(scene.api.inspect_volume(vol)["Mountpoint"])
    _fill(mountpoint)
    scene.container("app", [vol], scene.label(vol))
    scene.snapshot()
    scene.config.write_text(
        scene.config.read_text()
        .replace(SCRIPT_CRANE, image)
        .replace('crane = "script"', 'crane = "script"\nstaging = "always"')
        .replace('"/out"', '"/salvage/target"')
    )
    done = scene.salvage("run")
    assert done.returncode == 0 and f"volume {vol}: staged in" in done.stderr, done.stderr
    copy = f"{vol}-copy"
    restored = scene.salvage("restore", vol, "--to", copy)
    try:
        assert restored.returncode == 0, restored.stderr
        after = _plain(Path(scene.api.inspect_volume(copy)["Mountpoint"]))
    finally:
        scene.api.remove_volume(copy, force=True)
    same = after == _plain(mountpoint)
    assert after == _plain(mountpoint)
    table(
        "tar crane through a stage, then `salvage restore --to`: owners, modes, times, hard"
        " link, symlink, bytes (the tar crane keeps no xattrs, ACLs, holes)",
        f"staged; restored identical; no stage left; {CALM}",
        f"staged; restored {'identical' if same else 'DIFFERENT'};"
        f" {'no stage left' if not _stages(scene) else 'stage left'}; {scene.observe()}",
    )


def _plain(root: Path) -> dict:
    """The manifest without what the tar crane does not keep: xattrs (ACLs are xattrs;
    without them a file's group bits are its ACL mask), holes, times below the second; and
    without the root directory's time, which the crane's restore sets when it empties the
    target."""
    found = {}
    for path, entry in manifest(root).items():
        entry = [e for e in entry if not isinstance(e, (tuple, bool))]
        if not stat.S_ISLNK(entry[0]):
            entry[3] //= 10**9
        if path == "acl":
            entry[0] &= ~0o070
        found[path] = entry if path != "." else entry[:3]
    return found


def test_random_kills_of_a_staged_run(scene, gnu_crane, table):
    vol = scene.volume("data")
    _random_file(Path(scene.api.inspect_volume(vol)["Mountpoint"]), 64)  # takes a moment
    scene.container("app", [vol], scene.label(vol))
    scene.container(
        "side", [vol], {"salvage.action": "pause", "salvage.command.post": "touch /signals/post"}
    )
    scene.snapshot()
    _on_gnu(scene)
    scene.go()  # the crane does not wait: a run lasts a few seconds
    chance = random.Random()
    seed = chance.randrange(10**6)
    chance.seed(seed)
    seen = []
    for kill in range(8):
        run = scene.start_run()
        time.sleep(chance.uniform(0.3, 3.0))  # a random moment is the fault itself
        scene.kill(run)
        after = scene.salvage("recover" if kill % 2 else "run")
        assert after.returncode in (0, 1) and "Traceback" not in after.stderr, after.stderr
        left = len(_stages(scene)) + len(_stagers(scene))
        seen.append(scene.observe() + ("; stage or stager left" if left else ""))
    broken = [f"kill {i}: {note}" for i, note in enumerate(seen) if note != CALM]
    table(
        f"8 SIGKILLs of a staged `salvage run` at random moments (seed {seed}), each then"
        " recover or the next run",
        f"every time: no stage, no stager; {CALM}",
        "; ".join(broken) or f"every time: no stage, no stager; {CALM}",
    )
