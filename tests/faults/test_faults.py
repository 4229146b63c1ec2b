"""Each fault, then what a user checks: every container in its prior state with the same
id, no volume written, no crane left, nothing left in the record."""

from __future__ import annotations

import contextlib
import glob
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest
from support.harness import SCRIPT_CRANE, TAR_CRANE
from support.scene import CALM, wait_for
from support.watch import container_events

from salvage.safety.lock import is_held


def _stack(scene, **labels):
    vol = scene.volume("data")
    app = scene.container("app", [vol], {**scene.label(vol), **labels})
    scene.snapshot()
    return vol, app


@pytest.mark.boundary
def test_sigkill_while_stopped_then_recover(scene, table):
    vol, app = _stack(scene)
    run = scene.start_run()
    scene.crane_started(vol)
    assert scene.state_of(app) == "exited"
    scene.kill(run)
    assert scene.state_of(app) == "exited"  # what every peer leaves behind
    done = scene.salvage("recover")
    assert done.returncode == 0, done.stderr
    assert f'container "{app}" (stop by run' in done.stderr and "): started" in done.stderr
    again = scene.salvage("recover")  # idempotent
    assert again.returncode == 0 and "started" not in again.stderr
    table("SIGKILL while containers are stopped, then `salvage recover`", CALM, scene.observe())


def test_sigkill_while_stopped_then_next_run(scene, table):
    vol, app = _stack(scene)
    run = scene.start_run()
    scene.crane_started(vol)
    scene.kill(run)
    scene.go()
    done = scene.salvage("run")  # recovers first, then backs up
    assert done.returncode == 0, done.stderr
    assert "recover:" in done.stderr and (scene.out / f"{vol}.copy" / "data").exists()
    table(
        "SIGKILL while containers are stopped, then the next `salvage run`", CALM, scene.observe()
    )


def test_sigkill_while_paused(scene, table):
    vol, app = _stack(scene, **{"salvage.action": "pause"})
    run = scene.start_run()
    scene.crane_started(vol)
    assert scene.state_of(app) == "paused"
    scene.kill(run)
    done = scene.salvage("recover")
    assert done.returncode == 0 and "unpaused" in done.stderr, done.stderr
    table("SIGKILL while containers are paused, then `salvage recover`", CALM, scene.observe())


def test_sigkill_during_pre_command(scene, table):
    _, app = _stack(
        scene,
        **{
            "salvage.command.pre": "touch /signals/pre; sleep 30",
            "salvage.command.post": "touch /signals/post",
        },
    )
    run = scene.start_run()
    wait_for(lambda: (scene.signals / "pre").exists(), "the pre-command")
    scene.kill(run)
    done = scene.salvage("recover")
    assert done.returncode == 0, done.stderr
    post = "post-command ran" if (scene.signals / "post").exists() else "post-command did not run"
    table(
        "SIGKILL during a pre-command, then `salvage recover`",
        f"{CALM}; post-command ran",
        f"{scene.observe()}; {post}",
    )


@pytest.mark.boundary
def test_sigterm_mid_crane(scene, table):
    vol, app = _stack(scene)
    run = scene.start_run()
    scene.crane_started(vol)
    stderr = scene.kill(run, signal.SIGTERM)
    assert run.returncode == 1, stderr
    assert "interrupted (SIGTERM)" in stderr
    table("SIGTERM mid-crane", f"exit 1; {CALM}", f"exit {run.returncode}; {scene.observe()}")


@pytest.mark.boundary
def test_engine_restarted_mid_run(scene, table, fault_engine):
    vol, app = _stack(scene)
    run = scene.start_run()
    scene.crane_started(vol)
    fault_engine.restart()  # kills every container, the crane among them
    _, stderr = run.communicate(timeout=180)
    assert run.returncode == 1, stderr
    assert f"volume {vol}: failed" in stderr
    table(
        "dockerd restarted mid-run", f"exit 1; {CALM}", f"exit {run.returncode}; {scene.observe()}"
    )


def test_crane_exits_non_zero(scene, table):
    vol, app = _stack(scene)
    scene.crane_mode("fail")
    done = scene.salvage("run")
    assert f'volume {vol}: failed: crane "script" exited with 3' in done.stderr
    table("crane exits non-zero", f"exit 1; {CALM}", f"exit {done.returncode}; {scene.observe()}")


def test_crane_reports_a_hostile_result_file(scene, table):
    vol, app = _stack(scene)
    scene.crane_mode("report")  # 1 MB of random bytes as its result.json
    scene.go()
    done = scene.salvage("run")
    warning = f"volume {vol}: crane script: /salvage/meta/result.json ignored: larger than"
    assert warning in done.stderr, done.stderr
    table(
        "crane writes a 1 MB binary result.json",
        f"exit 0; one warning; {CALM}",
        f"exit {done.returncode}; {'one warning' if done.stderr.count(warning) == 1 else 'no'};"
        f" {scene.observe()}",
    )


def test_label_names_a_path_the_container_does_not_bind_mount(scene, table):
    # The container bind-mounts /signals only; its label asks for the host's /etc.
    app = scene.container("app", [], {f"salvage.tide.{scene.tide}": "/etc"})
    scene.snapshot()
    scene.go()
    done = scene.salvage("run")
    line = (
        f'container "{app}": label salvage.tide.{scene.tide}: "/etc" is not a bind mount'
        " of this container"
    )
    said = [x for x in done.stderr.splitlines() if line in x]
    cranes = [p.name for p in scene.out.iterdir() if p.name.endswith(".started")]
    lines = "one line" if len(said) == 1 else repr(done.stderr)
    table(
        "a tide label names a path its container does not bind-mount (/etc)",
        f"exit 2; one line; no crane; {CALM}",  # 2: a label problem
        f"exit {done.returncode}; {lines};"
        f" {'no crane' if not cranes else cranes}; {scene.observe()}",
    )


def test_sigkill_during_verify_restore_then_recover(scene, table):
    vol, app = _stack(scene)
    # The script crane, declaring verify: it starts, then waits (the test never says go).
    image, context = "salvage-test/crane-verify:latest", scene.tmp / "verify-crane"
    context.mkdir()
    (context / "Dockerfile").write_text(
        f'FROM {SCRIPT_CRANE}\nLABEL salvage.crane.actions="verify"\n'
    )
    subprocess.run(
        ["docker", "build", "-q", "-t", image, str(context)],
        env=scene.env(),
        check=True,
        stdout=subprocess.DEVNULL,
    )
    scene.config.write_text(scene.config.read_text().replace(SCRIPT_CRANE, image))
    mine = {"label": ["salvage.scratch", f"salvage.instance={scene.state}"]}

    def throwaway() -> list:
        return scene.api.volumes(filters=mine)["Volumes"] or []

    verify = subprocess.Popen(
        [sys.executable, "-m", "salvage", "-c", str(scene.config), "verify", "--restore", vol],
        env=scene.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    scene.crane_started(vol)
    assert len(throwaway()) == 1 and scene.state_of(app) == "running"  # nothing stopped
    scene.kill(verify)
    done = scene.salvage("recover")
    assert done.returncode == 0, done.stderr
    assert "recover: removed leftover scratch volume salvage-restore-" in done.stderr
    left = "left" if throwaway() else "removed"
    table(
        "SIGKILL during `salvage verify --restore`, then `salvage recover`",
        f"throwaway volume removed; {CALM}",
        f"throwaway volume {left}; {scene.observe()}",
    )


@pytest.mark.boundary
def test_crane_hangs_past_its_timeout(scene, table):
    vol, app = _stack(scene)
    scene.config = scene.write_config(tide_extra='crane_timeout = "2s"')
    scene.crane_mode("hang")
    done = scene.salvage("run")
    assert "still running after 2 s; killed" in done.stderr
    table(
        "crane hangs past its timeout",
        f"exit 1; {CALM}",
        f"exit {done.returncode}; {scene.observe()}",
    )


def test_pre_command_fails(scene, table):
    vol, app = _stack(scene, **{"salvage.command.pre": "exit 5", "salvage.action": "stop"})
    done = scene.salvage("run")
    assert f'container "{app}": pre-command "exit 5": exited with 5' in done.stderr
    assert not (scene.out / f"{vol}.started").exists()  # no crane ran
    table("pre-command fails", f"exit 1; {CALM}", f"exit {done.returncode}; {scene.observe()}")


def test_post_command_fails(scene, table):
    vol, app = _stack(scene, **{"salvage.command.post": "exit 6", "salvage.action": "stop"})
    scene.go()
    done = scene.salvage("run")
    assert f'container "{app}": post-command "exit 6": exited with 6' in done.stderr
    table("post-command fails", f"exit 1; {CALM}", f"exit {done.returncode}; {scene.observe()}")


def test_container_removed_by_someone_else_mid_run(scene, table):
    vol = scene.volume("data")
    scene.container("app", [vol], scene.label(vol))
    other = scene.container("other", [vol])
    scene.snapshot()
    run = scene.start_run()
    scene.crane_started(vol)
    scene.api.remove_container(other, force=True)  # someone else
    scene.go()
    _, stderr = run.communicate(timeout=120)
    assert f'container "{other}" was removed: backup not consistent' in stderr
    table(
        "a container removed by someone else mid-run",
        f"exit 1; {CALM}",
        f"exit {run.returncode}; {scene.observe(allow=[other])}",
    )


def test_container_started_by_someone_else_mid_run(scene, table):
    vol, app = _stack(scene)
    run = scene.start_run()
    scene.crane_started(vol)
    scene.api.start(app)  # someone else: their change stands, the backup is not trusted
    scene.go()
    _, stderr = run.communicate(timeout=120)
    assert f'container "{app}" was running by someone else during the backup' in stderr
    table(
        "a container started by someone else mid-run",
        f"exit 1; {CALM}",
        f"exit {run.returncode}; {scene.observe()}",
    )


def test_two_runs_at_once(scene, table):
    vol, app = _stack(scene)
    first = scene.start_run()
    scene.crane_started(vol)
    impatient = scene.write_config(top='lock_timeout = "1s"', name="impatient.toml")
    second = scene.salvage("run", config=impatient)
    assert second.returncode == 1
    assert "another salvage (pid " in second.stderr and "still holds" in second.stderr
    assert scene.state_of(app) == "exited"  # the second run did not "recover" it mid-backup
    scene.go()
    _, stderr = first.communicate(timeout=120)
    assert first.returncode == 0, stderr
    table(
        "two `salvage run` at once",
        f"second exit 1; first exit 0; {CALM}",
        f"second exit {second.returncode}; first exit {first.returncode}; {scene.observe()}",
    )


def test_docker_socket_unreachable(scene, table):
    vol, app = _stack(scene)
    done = scene.salvage("run", DOCKER_HOST=f"unix://{scene.tmp}/no-such.sock")
    lines = done.stderr.strip().splitlines()
    assert lines == [
        f"error: cannot reach the Docker engine at unix://{scene.tmp}/no-such.sock: no socket"
        " there: is the engine running (sudo systemctl start docker)? Otherwise set DOCKER_HOST"
        " to its address"
    ], done.stderr
    table(
        "Docker socket unreachable", f"exit 1; {CALM}", f"exit {done.returncode}; {scene.observe()}"
    )


def test_stop_path_leaves_a_live_run_alone(scene, table):
    vol, app = _stack(scene)
    run = scene.start_run()
    scene.crane_started(vol)
    done = scene.salvage("recover", "--if-idle")  # what a unit's ExecStopPost= runs
    assert done.returncode == 0 and "another salvage is running" in done.stderr
    assert scene.state_of(app) == "exited"  # still down for its backup, not "recovered"
    scene.go()
    _, stderr = run.communicate(timeout=120)
    table(
        "`salvage recover --if-idle` while another run is live",
        f"run exit 0; {CALM}",
        f"run exit {run.returncode}; {scene.observe()}",
    )


def test_sigkill_during_a_containers_stop_grace_period(scene, table):
    vol = scene.volume("data")
    # Without an init, busybox sleep ignores SIGTERM: its stop takes the whole 3 s.
    app = scene.container("app", [vol], scene.label(vol), init=False, stop_timeout=3)
    scene.snapshot()
    with container_events(scene.engine.host, [app]) as seen:
        run = scene.start_run()
        wait_for(lambda: (app, "kill") in [e[:2] for e in seen], "Docker's SIGTERM to the app")
        scene.kill(run)  # the engine goes on stopping the container
        assert scene.state_of(app) == "running"  # still in its grace period
        done = scene.salvage("recover")
        assert done.returncode == 0, done.stderr
        wait_for(lambda: (app, "die") in [e[:2] for e in seen], "the end of the grace period")
    table(
        "SIGKILL during a container's stop grace period, then `salvage recover`",
        CALM,
        scene.observe(),
    )


def test_sigterm_before_a_volumes_crane_starts(scene, table):
    first, second = scene.volume("one"), scene.volume("two")
    scene.container("app", [first, second], scene.label(first, second))
    scene.snapshot()
    run = scene.start_run()  # one crane at a time: the second waits for the first
    wait_for(
        lambda: any((scene.out / f"{v}.started").exists() for v in (first, second)),
        "the first crane",
    )
    started = first if (scene.out / f"{first}.started").exists() else second
    waiting = second if started == first else first
    stderr = scene.kill(run, signal.SIGTERM)
    mark = f"volume {waiting}: "
    said = [line.split(mark, 1)[1] for line in stderr.splitlines() if mark in line]
    table(
        "SIGTERM while one volume's crane runs and the next waits",
        f"exit 1; the waiting volume: ['failed: interrupted (SIGTERM): not started']; {CALM}",
        f"exit {run.returncode}; the waiting volume: {said}; {scene.observe()}",
    )


def test_sigterm_while_containers_stop_at_once(scene, table):
    vol = scene.volume("data")
    slow = ("sh", "-c", "trap 'sleep 2; exit 0' TERM; sleep 3600 & wait")  # 2 s to stop
    compose = {"com.docker.compose.project": f"{scene.prefix}p"}
    needs_db = {**compose, "com.docker.compose.depends_on": "db:service_started:false"}
    db = scene.container(
        "db",
        [vol],
        {
            **scene.label(vol),
            **compose,
            "com.docker.compose.service": "db",
            "com.docker.compose.depends_on": "",
        },
        command=slow,
    )
    web = scene.container(
        "web", [vol], {**needs_db, "com.docker.compose.service": "web"}, command=slow
    )
    worker = scene.container(
        "worker", [vol], {**needs_db, "com.docker.compose.service": "w"}, command=slow
    )
    scene.snapshot()
    with container_events(scene.engine.host, [db, web, worker]) as seen:
        run = scene.start_run()
        wait_for(
            lambda: {(web, "kill"), (worker, "kill")} <= {e[:2] for e in seen},
            "the stop signals of the two dependents, at once",
        )
        stderr = scene.kill(run, signal.SIGTERM)  # db waits for them: never touched
    assert "interrupted (SIGTERM)" in stderr, stderr
    db_stopped = (db, "kill") in {e[:2] for e in seen}
    first_die = min(t for name, action, t in seen if action == "die")
    both = all(t < first_die for name, action, t in seen if action == "kill")
    table(
        "SIGTERM while two containers stop at once, their dependency waiting",
        f"exit 1; both signalled before either died; the dependency never stopped; {CALM}",
        f"exit {run.returncode}; {'both' if both else 'not both'} signalled before either died;"
        f" the dependency {'stopped' if db_stopped else 'never stopped'}; {scene.observe()}",
    )


# --- no failure path leaves a container down or destroys one (issue 11, items 6-12) -------


def test_auto_remove_container_is_never_stopped(scene, table):
    vol = scene.volume("data")
    app = scene.container("app", [vol], scene.label(vol), auto_remove=True)  # `docker run --rm`
    scene.snapshot()
    plan, check = scene.salvage("plan"), scene.salvage("check")
    scene.go()
    done = scene.salvage("run")
    named = [
        f"{what} names it in one line"
        for what, out in (("plan", plan.stdout), ("check", check.stderr))
        if len([line for line in out.splitlines() if f'"{app}"' in line and "--rm" in line]) == 1
    ]
    table(
        "a --rm container (AutoRemove) whose action is stop",
        f"plan names it in one line; check names it in one line; run exit 2; {CALM}",
        "; ".join(named + [f"run exit {done.returncode}", scene.observe()]),
    )


def test_auto_remove_container_paused(scene, table):
    vol = scene.volume("data")
    app = scene.container(
        "app", [vol], {**scene.label(vol), "salvage.action": "pause"}, auto_remove=True
    )
    scene.snapshot()
    run = scene.start_run()
    scene.crane_started(vol)
    during = scene.state_of(app)
    scene.go()
    _, stderr = run.communicate(timeout=120)
    table(
        "a --rm container whose action is pause",
        f"paused for the backup; exit 0; {CALM}",
        f"{during} for the backup; exit {run.returncode}; {scene.observe()}",
    )


def _restart_count(scene, name: str) -> int:
    return scene.api.inspect_container(name)["RestartCount"]


def test_restarting_container_is_stopped_like_a_running_one(scene, table):
    vol = scene.volume("data")
    # Crashes at once: after a few restarts it spends nearly all its time "restarting".
    app = scene.container(
        "app", [vol], scene.label(vol), command=("false",), restart_policy={"Name": "always"}
    )
    wait_for(
        lambda: _restart_count(scene, app) >= 5 and scene.state_of(app) == "restarting",
        "a restart loop with long pauses",
    )
    run = scene.start_run()
    scene.crane_started(vol)
    during = scene.state_of(app)
    scene.go()
    _, stderr = run.communicate(timeout=120)
    print(stderr)  # shown when the row breaks
    # A start by hand (salvage's) resets the count: the loop goes on from its first restart.
    wait_for(lambda: _restart_count(scene, app) >= 1, "the restart loop again")
    after = scene.state_of(app)
    table(
        "a container in a restart loop (state restarting)",
        "exited during the backup; back in its restart loop; exit 0",
        f"{during} during the backup; "
        + ("back in its restart loop" if after in ("restarting", "running") else after)
        + f"; exit {run.returncode}",
    )


def test_stopped_container_started_mid_backup_fails_the_group(scene, table):
    vol = scene.volume("data")
    scene.container("app", [vol], scene.label(vol))
    other = scene.container("other", [vol])
    scene.api.stop(other, timeout=1)  # exited: salvage leaves it as it is
    scene.snapshot()
    run = scene.start_run()
    scene.crane_started(vol)
    scene.api.start(other)  # someone else; it may write to the volume...
    scene.api.stop(other, timeout=1)  # ...and is gone again before the crane ends
    scene.go()
    _, stderr = run.communicate(timeout=120)
    assert f'container "{other}" was started by someone else during the backup' in stderr
    table(
        "an exited container started (and stopped) by someone else mid-backup",
        f"exit 1; {CALM}",
        f"exit {run.returncode}; {scene.observe()}",
    )


def _faketime(offset: str) -> dict:
    library = glob.glob("/usr/lib/*/faketime/libfaketime.so.1")
    if not library:
        pytest.fail("libfaketime is missing: apt-get install faketime (scripts/install-deps)")
    return {"LD_PRELOAD": library[0], "FAKETIME": offset, "DONT_FAKE_MONOTONIC": "1"}


def test_clock_skew(scene, table):
    vol, app = _stack(scene)
    scene.go()
    slow = _faketime("-10m")  # salvage's clock 10 minutes behind the engine's
    done = scene.salvage("run", **slow)
    assert done.returncode == 0, done.stderr
    again = scene.salvage("run", **slow)  # and once more, with a container stopped before
    table(
        "salvage's clock 10 minutes behind the engine's",
        f"exit 0, twice; {CALM}",
        f"exit {done.returncode}, {'twice' if again.returncode == 0 else again.returncode};"
        f" {scene.observe()}",
    )


def test_torn_record_tail(scene, table):
    vol, app = _stack(scene)
    run = scene.start_run()
    scene.crane_started(vol)
    scene.kill(run)
    with open(scene.state / "record.jsonl", "ab") as record:  # died while writing a line
        record.write(b'{"add":{"container":"4f2a","name":"x","change":"st')
    done = scene.salvage("recover")
    assert "Traceback" not in done.stderr
    table(
        "salvage killed while writing the record (a torn last line), then recover",
        f"exit 0; {CALM}",
        f"exit {done.returncode}; {scene.observe()}",
    )


DAMAGE = {
    "record.jsonl": [
        "garbage\n",
        "[]\n",
        '{"add": {"container": "x"}}\n',
        '{"remove": ["a", "stop"]}\n\x00\x00\x00\n',
    ],
    "record.json": ["", "[]", "{", "garbage"],  # the record of older salvage versions
}


def test_damaged_record(scene, table):
    vol, app = _stack(scene)
    scene.go()
    scene.state.mkdir()
    seen = set()
    for name, contents in DAMAGE.items():
        for content in contents:
            path = scene.state / name
            path.write_text(content)
            for command in ("recover", "run"):
                done = scene.salvage(command)
                lines = done.stderr.strip().splitlines()
                if content == "":  # an empty file is an empty record
                    ok = done.returncode == 0
                else:
                    ok = done.returncode == 2 and len(lines) == 1 and str(path) in lines[0]
                seen.add("as expected" if ok else f"{command} on {content!r}: {done.stderr}")
            path.unlink(missing_ok=True)  # a run moves an older record into the new one
    table(
        "a damaged record (garbage, [], unknown fields, NULs; older record.json truncated)",
        f"run and recover exit 2 with one line naming the file; {CALM}",
        f"{', '.join(sorted(seen))}; {scene.observe()}".replace(
            "as expected", "run and recover exit 2 with one line naming the file"
        ),
    )


@contextlib.contextmanager
def _filled(path):
    """Keep a filesystem full: another program writing on, as a full disk looks."""
    done = threading.Event()

    def fill() -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        while not done.is_set():
            try:
                os.write(fd, b"\0" * 4096)
            except OSError:
                done.wait(0.001)
        os.close(fd)

    filler = threading.Thread(target=fill, daemon=True)
    filler.start()
    wait_for(lambda: shutil.disk_usage(path.parent).free < 4096, "a full filesystem")
    try:
        yield
    finally:
        done.set()
        filler.join()


def test_state_directory_fills_mid_run(scene, table):
    scene.state.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "salvage-faults", str(scene.state)], check=True
    )
    try:
        one, two = scene.volume("one"), scene.volume("two")  # two groups, "one" first
        scene.container("a1", [one], scene.label(one))
        scene.container("a2", [one])
        scene.container("b", [two], scene.label(two))
        scene.snapshot()
        run = scene.start_run()
        scene.crane_started(one)  # a1 and a2 are down, recorded
        with _filled(scene.state / "filler"):  # and any space freed is taken again at once
            scene.go()
            _, stderr = run.communicate(timeout=120)
        assert "Traceback" not in stderr, stderr
        assert "No space left on device" in stderr
        left = sorted(
            p.name
            for p in scene.state.iterdir()
            if p.name not in ("lock", "history.sqlite", "record.jsonl", "filler")
        )
        observed = (
            f"exit {run.returncode}; "
            + (f"left: {', '.join(left)}" if left else "no temporary file left")
            + f"; {scene.observe()}"
        )
    finally:
        subprocess.run(["umount", str(scene.state)], check=False)
    table(
        "the state directory fills up mid-run (two groups)",
        f"exit 1; no temporary file left; {CALM}",
        observed,
    )


@pytest.mark.boundary
def test_engine_frozen_during_a_stop(scene, table, fault_engine):
    vol = scene.volume("data")
    # Without an init, busybox sleep ignores SIGTERM: its stop takes the whole 3 s.
    app = scene.container("app", [vol], scene.label(vol), init=False, stop_timeout=3)
    scene.snapshot()
    scene.config = scene.write_config(docker='timeout = "5s"')
    pid = fault_engine.proc.pid
    with container_events(scene.engine.host, [app]) as seen:
        run = scene.start_run()
        wait_for(lambda: (app, "kill") in [e[:2] for e in seen], "Docker's SIGTERM to the app")
        os.kill(pid, signal.SIGSTOP)  # the engine freezes in the middle of the stop
        try:
            lines = []
            while not lines or "Docker engine unreachable" not in lines[-1]:
                line = run.stderr.readline()  # the run gave up on the stop, and retries
                assert line, "".join(lines)
                lines.append(line)
        finally:
            os.kill(pid, signal.SIGCONT)
        _, stderr = run.communicate(timeout=180)
    table(
        "dockerd frozen (SIGSTOP) during a stop, thawed within the retry window",
        f"exit 1; {CALM}",
        f"exit {run.returncode}; {scene.observe()}",
    )


def test_sighup_mid_crane(scene, table):
    vol, app = _stack(scene)
    run = scene.start_run()
    scene.crane_started(vol)
    stderr = scene.kill(run, signal.SIGHUP)
    assert "interrupted (SIGHUP)" in stderr, stderr
    table("SIGHUP mid-crane", f"exit 1; {CALM}", f"exit {run.returncode}; {scene.observe()}")


def test_sigterm_during_a_restore(scene, table):
    vol = scene.volume("data")
    app = scene.container("app", [vol], scene.label(vol), init=False, stop_timeout=3)
    text = scene.config.read_text().replace(f'image = "{SCRIPT_CRANE}"', f'image = "{TAR_CRANE}"')
    scene.config.write_text(text.replace('"/out"', '"/salvage/target"'))
    done = scene.salvage("run")  # a snapshot to restore
    assert done.returncode == 0, done.stderr
    scene.snapshot()
    with container_events(scene.engine.host, [app]) as seen:
        restore = subprocess.Popen(
            [sys.executable, "-m", "salvage", "-c", str(scene.config), "restore", vol, "--force"],
            env=scene.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        wait_for(lambda: (app, "kill") in [e[:2] for e in seen], "the restore stopping the app")
        stderr = scene.kill(restore, signal.SIGTERM)
    assert "Traceback" not in stderr, stderr
    table(
        "SIGTERM during a restore",
        f"exit 1; {CALM}",
        f"exit {restore.returncode}; {scene.observe()}",
    )


def test_state_directory_turns_read_only_mid_run(scene, table):
    one, two = scene.volume("one"), scene.volume("two")  # two groups, "one" first
    scene.container("a1", [one], scene.label(one))
    scene.container("a2", [one])
    scene.container("b", [two], scene.label(two))
    scene.snapshot()
    run = scene.start_run()
    scene.crane_started(one)  # a1 and a2 are down, recorded
    # A read-only mount over the state directory (the run's open lock stays below it).
    subprocess.run(["mount", "--bind", str(scene.state), str(scene.state)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(scene.state)], check=True)
        scene.go()
        _, stderr = run.communicate(timeout=120)
        assert "Traceback" not in stderr and "Read-only file system" in stderr, stderr
        back = (
            "every container back"
            if scene.observe().startswith("containers as before")
            else scene.observe()
        )
    finally:
        subprocess.run(["umount", str(scene.state)], check=False)
    done = scene.salvage("recover")  # writable again: the record is cleared
    table(
        "the state directory turns read-only mid-run (two groups)",
        f"exit 1; every container back; after `recover`: exit 0; {CALM}",
        f"exit {run.returncode}; {back}; after `recover`: exit {done.returncode};"
        f" {scene.observe()}",
    )


def test_sighup_during_recover(scene, table):
    vol = scene.volume("data")
    # busybox sleep without an init ignores SIGTERM: its stop takes the whole 10 s.
    app = scene.container("app", [vol], scene.label(vol), init=False, stop_timeout=10)
    scene.snapshot()
    with container_events(scene.engine.host, [app]) as seen:
        run = scene.start_run()
        wait_for(lambda: (app, "kill") in [e[:2] for e in seen], "Docker's SIGTERM to the app")
        scene.kill(run)  # the engine goes on stopping the container
        recover = subprocess.Popen(
            [sys.executable, "-m", "salvage", "-c", str(scene.config), "recover"],
            env=scene.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        wait_for(lambda: is_held(str(scene.state)), "recover holding the lock")
        assert scene.state_of(app) == "running"  # recover waits out the grace period
        stderr = scene.kill(recover, signal.SIGHUP)
    assert "Traceback" not in stderr and "interrupted (SIGHUP)" in stderr, stderr
    table(
        "SIGHUP during `salvage recover` (waiting out a stop's grace period)",
        f"exit 1; {CALM}",
        f"exit {recover.returncode}; {scene.observe()}",
    )


def test_random_kills_of_run(scene, table):
    vol = scene.volume("data")
    scene.container("app", [vol], scene.label(vol))
    scene.container(
        "side", [vol], {"salvage.action": "pause", "salvage.command.post": "touch /signals/post"}
    )
    scene.snapshot()
    scene.go()  # the crane does not wait: a run lasts a second or two
    chance = random.Random()
    seed = chance.randrange(10**6)
    chance.seed(seed)
    seen = []
    for kill in range(12):
        run = scene.start_run()
        time.sleep(chance.uniform(0.3, 2.5))  # a random moment is the fault itself
        scene.kill(run)
        after = scene.salvage("recover" if kill % 2 else "run")
        assert after.returncode in (0, 1) and "Traceback" not in after.stderr, after.stderr
        seen.append(scene.observe())
    broken = [f"kill {i}: {note}" for i, note in enumerate(seen) if note != CALM]
    table(
        f"12 SIGKILLs of `salvage run` at random moments (seed {seed}), each then recover"
        " or the next run",
        f"every time: {CALM}",
        "; ".join(broken) or f"every time: {CALM}",
    )


def test_random_signals_to_run(scene, table):
    vol = scene.volume("data")
    scene.container("app", [vol], scene.label(vol))
    scene.container(
        "side", [vol], {"salvage.action": "pause", "salvage.command.post": "touch /signals/post"}
    )
    scene.snapshot()
    scene.go()
    chance = random.Random()
    seed = chance.randrange(10**6)
    chance.seed(seed)
    seen = []
    for number in range(9):
        sig = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)[number % 3]
        run = scene.start_run()
        wait_for(
            lambda run=run: is_held(str(scene.state)) or run.poll() is not None, "the run's lock"
        )
        time.sleep(chance.uniform(0, 2))  # a random moment is the fault itself
        stderr = scene.kill(run, sig)
        # A signal that comes once the tide is over (its summary said) and the handlers are
        # gone ends salvage by that signal, as systemd expects of a stop: nothing to unwind.
        over = re.search(r"^tide \S+: \d+ volumes? backed up, ", stderr, re.M)
        code_ok = run.returncode in (0, 1) or (over and run.returncode == -sig)
        assert "Traceback" not in stderr and code_ok, stderr
        seen.append(f"{sig.name}: {scene.observe()}")  # no recover: the run unwound itself
    broken = [note for note in seen if not note.endswith(CALM)]
    table(
        f"9 SIGTERM/SIGINT/SIGHUP to `salvage run` at random moments (seed {seed})",
        f"every time: {CALM}",
        "; ".join(broken) or f"every time: {CALM}",
    )
