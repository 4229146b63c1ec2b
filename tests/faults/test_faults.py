"""Each fault, then what a user checks: every container in its prior state with the same
id, no volume written, no crane left, nothing left in the record."""

from __future__ import annotations

import signal

from support.scene import CALM, wait_for
from support.watch import container_events


def _stack(scene, **labels):
    vol = scene.volume("data")
    app = scene.container("app", [vol], {**scene.label(vol), **labels})
    scene.snapshot()
    return vol, app


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
    table("SIGKILL while containers are stopped, then the next `salvage run`", CALM,
          scene.observe())  # fmt: skip


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
    _, app = _stack(scene, **{
        "salvage.command.pre": "touch /signals/pre; sleep 30",
        "salvage.command.post": "touch /signals/post"})  # fmt: skip
    run = scene.start_run()
    wait_for(lambda: (scene.signals / "pre").exists(), "the pre-command")
    scene.kill(run)
    done = scene.salvage("recover")
    assert done.returncode == 0, done.stderr
    post = "post-command ran" if (scene.signals / "post").exists() else "post-command did not run"
    table("SIGKILL during a pre-command, then `salvage recover`", f"{CALM}; post-command ran",
          f"{scene.observe()}; {post}")  # fmt: skip


def test_sigterm_mid_crane(scene, table):
    vol, app = _stack(scene)
    run = scene.start_run()
    scene.crane_started(vol)
    stderr = scene.kill(run, signal.SIGTERM)
    assert run.returncode == 1, stderr
    assert "interrupted (SIGTERM)" in stderr
    table("SIGTERM mid-crane", f"exit 1; {CALM}", f"exit {run.returncode}; {scene.observe()}")


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


def test_crane_hangs_past_its_timeout(scene, table):
    vol, app = _stack(scene)
    scene.config = scene.write_config(tide_extra='crane_timeout = "2s"')
    scene.crane_mode("hang")
    done = scene.salvage("run")
    assert "still running after 2 s; killed" in done.stderr
    table("crane hangs past its timeout", f"exit 1; {CALM}",
          f"exit {done.returncode}; {scene.observe()}")  # fmt: skip


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
    table("a container removed by someone else mid-run", f"exit 1; {CALM}",
          f"exit {run.returncode}; {scene.observe(allow=[other])}")  # fmt: skip


def test_container_started_by_someone_else_mid_run(scene, table):
    vol, app = _stack(scene)
    run = scene.start_run()
    scene.crane_started(vol)
    scene.api.start(app)  # someone else: their change stands, the backup is not trusted
    scene.go()
    _, stderr = run.communicate(timeout=120)
    assert f'container "{app}" was running by someone else during the backup' in stderr
    table("a container started by someone else mid-run", f"exit 1; {CALM}",
          f"exit {run.returncode}; {scene.observe()}")  # fmt: skip


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
    table("`salvage recover --if-idle` while another run is live", f"run exit 0; {CALM}",
          f"run exit {run.returncode}; {scene.observe()}")  # fmt: skip


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
    table("SIGKILL during a container's stop grace period, then `salvage recover`", CALM,
          scene.observe())  # fmt: skip


def test_sigterm_before_a_volumes_crane_starts(scene, table):
    first, second = scene.volume("one"), scene.volume("two")
    scene.container("app", [first, second], scene.label(first, second))
    scene.snapshot()
    run = scene.start_run()  # one crane at a time: the second waits for the first
    wait_for(lambda: any((scene.out / f"{v}.started").exists() for v in (first, second)),
             "the first crane")  # fmt: skip
    started = first if (scene.out / f"{first}.started").exists() else second
    waiting = second if started == first else first
    stderr = scene.kill(run, signal.SIGTERM)
    mark = f"volume {waiting}: "
    said = [line.split(mark, 1)[1] for line in stderr.splitlines() if mark in line]
    table("SIGTERM while one volume's crane runs and the next waits",
          f"exit 1; the waiting volume: ['failed: interrupted (SIGTERM): not started']; {CALM}",
          f"exit {run.returncode}; the waiting volume: {said}; {scene.observe()}")  # fmt: skip
