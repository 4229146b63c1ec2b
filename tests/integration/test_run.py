"""`salvage run` against a real engine and real docker-compose: what gets backed up, what
goes down, and that every container ends exactly as it was."""

from __future__ import annotations

import tarfile
import time

import pytest
from support.harness import ROOT, events

pytestmark = pytest.mark.boundary  # docs/testing.md: run again on the distribution's libraries


def _archive_files(path) -> dict:
    with tarfile.open(path) as archive:
        return {
            m.name: archive.extractfile(m).read() if m.isfile() else None
            for m in archive.getmembers()
        }


def test_backs_up_labelled_volumes_and_leaves_every_container_as_it_was(stack, salvage, api):
    gvol = stack.volume("gvol")
    project = stack.compose(
        "app",
        f"""
        version: "2.4"
        services:
          web:
            image: salvage-test/busybox
            init: true
            network_mode: none
            command: >-
              sh -c 'echo web-data > /data/web.txt; echo extra > /extra/e.txt; exec sleep 3600'
            volumes: [data:/data, extra:/extra]
            labels:
              salvage.tide.{stack.tide}: data,extra
          worker:
            image: salvage-test/busybox
            init: true
            network_mode: none
            command: sleep 3600
            volumes: [data:/data]
            labels:
              salvage.tide.{stack.tide}: g:{gvol}
        volumes:
          data:
          extra:
        """,
    )
    web, worker = stack.id_of(project, "web"), stack.id_of(project, "worker")
    # Users of the global volume: one stopped before the run, one paused by its label.
    stopped = stack.container("gstopped", [gvol], command="echo g > /gvol/g.txt; sleep 3600")
    pauser = stack.container("gpause", [gvol], labels={"salvage.action": "pause"})
    unrelated = stack.container("unrelated", [stack.volume("other")])
    api.stop(stopped, timeout=1)
    api.pause(worker)  # already paused: must stay paused, untouched
    before = stack.states()
    assert before[worker][1] == "paused" and before[stopped][1] == "exited"

    salvage.use_tar("smart")
    since = time.time()
    done = salvage("run", "--tide", stack.tide)

    assert done.returncode == 0, done.stderr
    assert stack.states() == before  # same ids, same states
    seen = events(api, since)
    touched = {
        (name, action) for name, action, _ in seen if name and not name.startswith("salvage-crane")
    }
    assert (web, "die") in touched and (web, "start") in touched
    assert (pauser, "pause") in touched and (pauser, "unpause") in touched
    assert not {n for n, _ in touched} & {worker, stopped, unrelated}

    archives = salvage.archives()
    assert sorted(archives) == sorted([f"{project}_data", f"{project}_extra", gvol])
    files = _archive_files(archives[f"{project}_data"][0])
    assert files["volume/web.txt"] == b"web-data\n"
    assert b'"name": "%s_data"' % project.encode() in files["meta/meta.json"]
    assert _archive_files(archives[gvol][0])["volume/g.txt"] == b"g\n"
    assert _archive_files(archives[f"{project}_extra"][0])["volume/e.txt"] == b"extra\n"
    # No crane is left behind.
    assert not api.containers(all=True, filters={"label": [f"salvage.instance={salvage.state}"]})


def test_empty_volume_backs_up(stack, salvage):
    empty = stack.volume("empty")
    stack.container("holder", [empty], labels={f"salvage.tide.{stack.tide}": f"g:{empty}"})
    salvage.use_tar()
    salvage("run", check_code=0)
    names = set(_archive_files(salvage.archives()[empty][0]))
    assert "volume" in names and not [n for n in names if n.startswith("volume/")]


def test_failing_crane_fails_its_volume_only(stack, salvage, api):
    good, bad = stack.volume("good"), stack.volume("bad")
    a = stack.container("a", [good], labels={f"salvage.tide.{stack.tide}": f"g:{good}"})
    b = stack.container("b", [bad], labels={f"salvage.tide.{stack.tide}": f"g:{bad}"})
    salvage.use_script(
        f'if [ "$SALVAGE_VOLUME_NAME" = "{bad}" ]; then echo disk full >&2; exit 3; fi;'
        " cp -a /salvage/volume /out/$SALVAGE_VOLUME_NAME",
    )
    before = stack.states()
    since = time.time()
    done = salvage("run")

    assert done.returncode == 1, done.stderr
    assert f'volume {bad}: failed: crane "script" exited with 3' in done.stderr
    assert f"{bad}: disk full" in done.stderr  # the crane's output, prefixed with its volume
    assert (salvage.backups / good).is_dir() and not (salvage.backups / bad).exists()
    assert stack.states() == before
    restarted = [n for n, action, _ in events(api, since) if action == "start"]
    assert a in restarted and b in restarted


def test_hung_crane_is_killed_at_its_timeout(stack, salvage, api):
    vol = stack.volume("slow")
    stack.container("c", [vol], labels={f"salvage.tide.{stack.tide}": f"g:{vol}"})
    salvage.use_script("sleep 600", tide='crane_timeout = "2s"')
    before = stack.states()
    done = salvage("run")
    assert done.returncode == 1
    assert f'volume {vol}: failed: crane "script" still running after 2 s; killed' in done.stderr
    assert stack.states() == before
    assert not api.containers(all=True, filters={"label": [f"salvage.instance={salvage.state}"]})


def test_failing_pre_command_touches_nothing_in_its_group(stack, salvage, api):
    hooked, other = stack.volume("hooked"), stack.volume("other")
    a = stack.container(
        "a",
        [hooked],
        labels={
            f"salvage.tide.{stack.tide}": f"g:{hooked}",
            "salvage.action": "stop",
            "salvage.command.pre": "echo not now; exit 4",
            "salvage.command.post": "touch /tmp/post-ran",
        },
    )
    b = stack.container("b", [hooked])  # a second user of the same volume
    c = stack.container("c", [other], labels={f"salvage.tide.{stack.tide}": f"g:{other}"})
    salvage.use_tar()
    before = stack.states()
    since = time.time()
    done = salvage("run")

    assert done.returncode == 1
    assert (
        f'container "{a}": pre-command "echo not now; exit 4": exited with 4: not now'
        in done.stderr
    )
    assert stack.states() == before
    seen = {(n, action) for n, action, _ in events(api, since)}
    assert not [e for e in seen if e[0] in (a, b) and e[1] in ("die", "stop", "pause")]
    assert sorted(salvage.archives()) == [other]  # the other group still ran
    assert (c, "die") in seen
    # The failed pre-command's own post-command does not run.
    probe = api.exec_create(a, ["test", "-e", "/tmp/post-ran"])
    api.exec_start(probe)
    assert api.exec_inspect(probe)["ExitCode"] == 1


def test_commands_run_as_user_with_exit_code_policy(stack, salvage, api):
    vol = stack.volume("db")
    a = stack.container(
        "db",
        [vol],
        labels={
            f"salvage.tide.{stack.tide}": f"g:{vol}",
            "salvage.user": "app",
            "salvage.command.pre": "id -un > /db/dump-by; exit 1",
            "salvage.command.exitcode": "2-5",
            "salvage.command.post": "id -un > /tmp/post-by",
        },
        command="chmod 777 /db; exec sleep 3600",
    )
    salvage.use_tar()
    since = time.time()
    done = salvage("run")
    assert done.returncode == 0, done.stderr  # exit 1 is not in 2-5: the backup goes on
    assert _archive_files(salvage.archives()[vol][0])["volume/dump-by"] == b"app\n"
    # pre/post commands imply action "ignore": the container never stopped.
    assert not [e for e in events(api, since) if e[0] == a and e[1] == "die"]
    probe = api.exec_create(a, ["cat", "/tmp/post-by"])
    assert api.exec_start(probe) == b"app\n"


def test_compose_depends_on_orders_stop_and_start(stack, salvage, api):
    vol = stack.volume("shared")
    base = {"com.docker.compose.project": f"{stack.prefix}dep"}
    # Compose v2 records depends_on in a label; Debian's docker-compose v1 does not.
    web = stack.container(
        "web",
        [vol],
        labels={
            **base,
            "com.docker.compose.service": "web",
            "com.docker.compose.depends_on": "db:service_started:false",
            f"salvage.tide.{stack.tide}": f"g:{vol}",
        },
    )
    db = stack.container("db", [vol], labels={**base, "com.docker.compose.service": "db"})
    # Name order alone would stop "db" first and start "web" first.
    assert sorted([db, web]) == [db, web]
    salvage.use_tar()
    since = time.time()
    salvage("run", check_code=0)
    order = [(n, a) for n, a, _ in events(api, since) if n in (web, db) and a in ("die", "start")]
    assert order == [(web, "die"), (db, "die"), (db, "start"), (web, "start")]


def test_concurrent_cranes_in_one_group(stack, salvage, api):
    vols = [stack.volume(f"v{i}") for i in range(3)]
    stack.container(
        "multi", vols, labels={f"salvage.tide.{stack.tide}": ",".join(f"g:{v}" for v in vols)}
    )
    # Each crane waits until all three are running at once: it only ends when they overlap.
    salvage.use_script(
        "mkdir -p /out/live; touch /out/live/$SALVAGE_VOLUME_NAME; i=0;"
        " while [ $(ls /out/live | wc -l) -lt 3 ] && [ $i -lt 100 ]; do"
        "   sleep 0.1; i=$((i+1));"
        " done; [ $(ls /out/live | wc -l) -ge 3 ]",
        tide="max_concurrent = 3",
        crane="max_concurrent = 3",
    )
    done = salvage("run")
    assert done.returncode == 0, done.stderr


def test_stop_waits_each_containers_own_stop_timeout(stack, salvage, api):
    vol = stack.volume("slowstop")
    # busybox sleep as PID 1 ignores SIGTERM: only the SIGKILL after the timeout stops it.
    name = stack.container("slow", [vol], labels={f"salvage.tide.{stack.tide}": f"g:{vol}"})
    api.remove_container(name, force=True)
    created = api.create_container(
        "salvage-test/busybox",
        ["sleep", "3600"],
        name=name,
        stop_timeout=2,
        labels={f"salvage.tide.{stack.tide}": f"g:{vol}"},
        host_config=api.create_host_config(binds=[f"{vol}:/data"], network_mode="none"),
    )
    api.start(created["Id"])
    salvage.use_tar()
    since = time.time()
    salvage("run", check_code=0)
    kills = [
        (e["Actor"]["Attributes"].get("signal"), e["timeNano"])
        for e in api.events(
            since=int(since),
            until=int(time.time()) + 1,
            decode=True,
            filters={"type": "container", "event": "kill"},
        )
        if e["Actor"]["Attributes"].get("name") == name and e["timeNano"] >= since * 1e9
    ]
    (term, term_at), (kill, kill_at) = kills
    assert (term, kill) == ("15", "9")
    # Docker sent SIGKILL after the container's own 2 s, not docker's default 10 s.
    assert 1.5 < (kill_at - term_at) / 1e9 < 6


def test_missing_reference_crane_is_built_on_first_use(stack, salvage, api):
    image = f"salvage/crane-tar:{stack.prefix}"  # a tag of its own: nobody else's image
    vol = stack.volume("data")
    stack.container("app", [vol], labels={f"salvage.tide.{stack.tide}": f"g:{vol}"})
    # offline: a local base instead of the public one
    salvage.use_tar(image=image, crane='base = "salvage-test/busybox:latest"')
    try:
        done = salvage("run")
        assert done.returncode == 0, done.stderr
        context = ROOT / "salvage/crane/images/tar"
        assert f'crane "tar": building {image} from {context} (first use)' in done.stderr
        assert api.inspect_image(image) and list(salvage.archives()) == [vol]
        again = salvage("run")  # built once
        assert again.returncode == 0 and "building" not in again.stderr
    finally:
        api.remove_image(image, force=True)


def _next_second() -> None:
    """Wait until the clock shows another second: each run's snapshot is named after its."""
    start = int(time.time())
    while int(time.time()) == start:
        time.sleep(0.05)


def test_tar_crane_without_zstd_writes_gzip(stack, salvage):
    """The busybox-based tar crane has no zstd: the default is gzip, an explicit zstd falls
    back to gzip with one line, and a value it does not know fails the volume with one."""
    vol = stack.volume("data")
    stack.container("c", [vol], labels={f"salvage.tide.{stack.tide}": f"g:{vol}"})
    salvage.use_tar()
    salvage("run", check_code=0)
    salvage.use_tar(crane='env = { TAR_COMPRESS = "zstd" }')
    _next_second()
    done = salvage("run", check_code=0)
    fallback = "TAR_COMPRESS=zstd, but this crane image has no zstd: gzip instead"
    assert f"{vol}: {fallback}" in done.stderr
    archives = salvage.archives()[vol]
    assert [a.name.endswith(".tar.gz") for a in archives] == [True, True]
    assert all(a.read_bytes()[:2] == b"\x1f\x8b" for a in archives)
    salvage.use_tar(crane='env = { TAR_COMPRESS = "lz4" }')
    _next_second()
    refused = salvage("run")
    assert refused.returncode == 1
    assert f'{vol}: TAR_COMPRESS="lz4" is not one of zstd, gzip, none' in refused.stderr
    assert f'volume {vol}: failed: crane "tar" exited with 2' in refused.stderr
    assert salvage.archives()[vol] == archives


def test_tar_keep_applies_once_per_tide_after_its_backups(stack, salvage, api):
    """TAR_KEEP is the tide's retention action (every container up), not each backup's."""
    one, two = stack.volume("one"), stack.volume("two")
    stack.container("a", [one], labels={f"salvage.tide.{stack.tide}": f"g:{one}"})
    stack.container("b", [two], labels={f"salvage.tide.{stack.tide}": f"g:{two}"})
    salvage.use_tar(crane='env = { TAR_KEEP = "1" }')
    salvage("run", check_code=0)
    first = salvage.archives()
    _next_second()
    done = salvage("run", check_code=0)
    after = salvage.archives()
    assert sorted(after) == sorted([one, two])
    for vol in (one, two):
        (kept,) = after[vol]
        assert kept not in first[vol]  # the newest stays, the older one went
        old = first[vol][0].name.split(".")[0]
        assert f"crane tar (retention): removed {vol}'s {old} (TAR_KEEP=1)" in done.stderr
    # Once, after the last group, with every container up: one retention crane per run.
    retention = [line for line in done.stderr.splitlines() if ": retention" in line]
    assert len(retention) == 1, retention
    backups = [i for i, line in enumerate(done.stderr.splitlines()) if "wrote /salvage" in line]
    removed = [i for i, line in enumerate(done.stderr.splitlines()) if "TAR_KEEP=1" in line]
    assert max(backups) < min(removed)
