"""`salvage run`'s decisions on the fake engine: whatever fails, every container the run
changed is brought back, and a backup that someone disturbed is not called good."""

from __future__ import annotations

import os
import signal
import time

import pytest
from docker.errors import APIError
from requests.exceptions import ReadTimeout

from salvage.actions import run as action
from salvage.actions.run import TideRun
from salvage.safety.record import Record

TIDE = {"salvage.tide.daily": "data"}


def scene(fake, **db_labels):
    """A volume `data` used by `db` (stopped for the backup, unless labelled otherwise)
    and `web` (paused); `old`, a stopped container of the volume, is left as it is."""
    fake.add_volume("data")
    fake.add_container("db", labels={**TIDE, **db_labels}, volumes=("data",))
    fake.add_container("web", labels={"salvage.action": "pause"}, volumes=("data",))
    fake.add_container("old", "exited", volumes=("data",))


def backup(fake, config):
    return TideRun(fake.engine(), config, "daily").run()


def cranes(fake, action="backup"):
    return [c for c in fake.created if c.env.get("SALVAGE_ACTION") == action]


def states(fake):
    return tuple(fake.state(name) for name in ("db", "web", "old"))


AS_FOUND = ("running", "running", "exited")


def test_a_good_run_backs_up_read_only_and_puts_everything_back(fake, config):
    scene(fake)
    seen = {}

    def crane(api, container):
        seen.update({c: api.state(c) for c in ("db", "web", "old")})
        seen["mounts"] = container.host_config["Mounts"]
        return 0

    fake.crane = crane
    result = backup(fake, config)
    assert result.exit_code == 0 and [v.volume for v in result.volumes if v.ok] == ["data"]
    assert seen["db"] == "exited" and seen["web"] == "paused" and seen["old"] == "exited"
    assert [(m["Source"], m["ReadOnly"]) for m in seen["mounts"]] == [("data", True)]
    assert states(fake) == AS_FOUND
    assert Record(config.state_directory).entries() == []
    assert not [c for c in fake.by_id.values() if c.name.startswith("salvage-crane")]
    assert result.downtime > 0


def test_a_failed_crane_fails_the_volume_and_brings_every_container_back(fake, config):
    scene(fake)
    fake.crane = lambda api, container: 3
    result = backup(fake, config)
    assert result.exit_code == 1
    assert [v.message for v in result.volumes] == ['crane "tar" exited with 3']
    assert states(fake) == AS_FOUND
    assert Record(config.state_directory).entries() == []


def test_a_container_started_by_someone_mid_backup_fails_the_group(fake, config):
    scene(fake)

    def crane(api, container):
        if container.env["SALVAGE_ACTION"] == "backup":
            api.start("old")  # someone's `docker start old`: it may write to the volume
        return 0

    fake.crane = crane
    result = backup(fake, config)
    assert result.exit_code == 1
    assert result.volumes[0].message == (
        'not backed up: group data: container "old" was started by someone else during the'
        " backup: backup not consistent"
    )
    assert len(cranes(fake, "mark")) == 1  # the snapshot is marked: never a restore's default
    assert fake.state("db") == "running" and fake.state("old") == "running"


def test_a_container_salvage_stopped_and_someone_started_fails_the_group(fake, config):
    scene(fake)

    def crane(api, container):
        api.start("db")
        return 0

    fake.crane = crane
    result = backup(fake, config)
    assert 'container "db" was running by someone else during the backup' in (
        result.volumes[0].message
    )
    assert fake.state("db") == "running" and fake.state("web") == "running"


def test_a_refused_pause_brings_back_what_was_stopped_and_runs_no_crane(fake, config):
    scene(fake)
    fake.fail("pause", APIError("cannot pause", explanation="cannot pause web"))
    result = backup(fake, config)
    assert result.exit_code == 1
    assert result.volumes[0].message == (
        "not backed up: group data: safe state failed: cannot pause web"
    )
    assert cranes(fake) == [] and fake.state("db") == "running" and fake.state("web") == "running"
    assert Record(config.state_directory).entries() == []


def test_a_stop_whose_answer_never_came_is_brought_back(fake, config):
    scene(fake)
    fake.fail("stop", ReadTimeout("Read timed out."), after=True)
    result = backup(fake, config)
    assert result.volumes[0].message == (
        "not backed up: group data: safe state failed: the Docker engine did not answer in time"
    )
    assert fake.state("db") == "running" and Record(config.state_directory).entries() == []


def test_a_failed_pre_command_touches_nothing_and_runs_its_post_command_not(fake, config):
    scene(
        fake,
        **{
            "salvage.command.pre": "flush",
            "salvage.command.post": "thaw",
            "salvage.action": "stop",
        },
    )
    ran = []

    def commands(container, command):
        ran.append(command)
        return (1, "disk full") if command == "flush" else (0, "")

    fake.commands = commands
    result = backup(fake, config)
    assert ran == ["flush"] and cranes(fake) == []
    assert result.volumes[0].message == (
        'not backed up: container "db": pre-command "flush": exited with 1: disk full'
    )
    assert fake.state("db") == "running" and fake.state("web") == "running"
    assert Record(config.state_directory).entries() == []


def test_pre_and_post_commands_around_the_backup_and_the_post_recorded_meanwhile(fake, config):
    scene(fake, **{"salvage.command.pre": "flush", "salvage.command.post": "thaw"})
    ran, recorded = [], []
    fake.commands = lambda container, command: ran.append(command) or (0, "")

    def crane(api, container):
        recorded.extend(e.change for e in Record(config.state_directory).entries())
        return 0

    fake.crane = crane
    assert backup(fake, config).exit_code == 0
    assert ran == ["flush", "thaw"] and recorded == ["post", "pause"]
    assert Record(config.state_directory).entries() == []


def test_a_signal_mid_group_kills_the_crane_and_brings_every_container_back(fake, config):
    scene(fake)

    def crane(api, container):
        os.kill(os.getpid(), signal.SIGTERM)
        deadline = time.monotonic() + 10
        while container.status == "running" and time.monotonic() < deadline:
            time.sleep(0.01)  # the signal's handler kills the cranes of this run
        return 0

    fake.crane = crane
    code = action.run(fake.engine(), config, ["daily", "daily"])
    assert code == 1
    assert fake.called("kill")
    assert states(fake) == AS_FOUND
    assert Record(config.state_directory).entries() == []
    assert len(cranes(fake)) == 1  # the second tide is not run


def test_a_label_problem_fails_its_group_and_touches_nothing(fake, config):
    scene(fake, **{"salvage.action": "freeze"})
    result = backup(fake, config)
    assert result.exit_code == 2 and cranes(fake) == []
    assert fake.state("db") == "running" and not fake.called("stop")


def test_a_missing_crane_image_fails_every_volume_before_any_container_is_touched(fake, config):
    scene(fake)
    fake.images.clear()
    config = config.__class__(
        **{
            **config.__dict__,
            "cranes": {
                "tar": config.cranes["tar"].__class__(name="tar", image="elsewhere/x", pull="never")
            },
        }
    )
    result = backup(fake, config)
    assert result.volumes[0].message == (
        'not backed up: crane "tar": image "elsewhere/x" is not on this host (pull = never)'
    )
    assert not fake.called("stop") and not fake.called("pause")


def test_an_observer_sees_a_read_only_view_and_aborts_through_it(fake, config):
    import dataclasses

    import pytest

    from salvage.report.observers import Observer, RunView

    scene(fake)
    seen = []

    class Shutdown(Observer):
        def containers_leaving(self, run, group):
            seen.append(type(run))
            with pytest.raises(dataclasses.FrozenInstanceError):
                run.run_id = "x"
            run.abort("the host is shutting down")

    result = TideRun(fake.engine(), config, "daily", [Shutdown()]).run()
    assert seen == [RunView]
    assert result.interrupted == "the host is shutting down"
    assert "interrupted (the host is shutting down)" in result.volumes[0].message
    assert states(fake) == AS_FOUND and cranes(fake) == []


def test_a_paused_bystander_someone_unpauses_mid_backup_fails_the_group(fake, config):
    """Left paused by salvage (it was so): unpaused, it may write; its start time is the
    same, only its state says so."""
    scene(fake)
    fake.add_container("frozen", "paused", volumes=("data",))

    def crane(api, container):
        if container.env["SALVAGE_ACTION"] == "backup":
            api.unpause("frozen")
        return 0

    fake.crane = crane
    result = backup(fake, config)
    assert result.exit_code == 1
    assert result.volumes[0].message == (
        'not backed up: group data: container "frozen" was running by someone else during the'
        " backup: backup not consistent"
    )
    assert fake.state("frozen") == "running" and states(fake) == AS_FOUND


def test_a_stopped_container_someone_failed_to_remove_mid_backup_is_left_dead(fake, config):
    """Dead, it runs nothing: the backup stands; Docker will not start it, so it is left."""
    scene(fake)

    def crane(api, container):
        if container.env["SALVAGE_ACTION"] == "backup":
            api.pin("db")
            with pytest.raises(APIError, match="unable to remove filesystem"):
                api.remove_container("db")
        return 0

    fake.crane = crane
    result = backup(fake, config)
    assert [v.volume for v in result.volumes if v.ok] == ["data"]
    assert (fake.state("db"), fake.state("web")) == ("dead", "running")
    assert Record(config.state_directory).entries() == []


def test_a_stopped_bystander_someone_removes_mid_backup_wrote_nothing(fake, config):
    scene(fake)

    def crane(api, container):
        if container.env["SALVAGE_ACTION"] == "backup":
            api.remove_container("old")
        return 0

    fake.crane = crane
    result = backup(fake, config)
    assert [v.volume for v in result.volumes if v.ok] == ["data"]
    assert (fake.state("db"), fake.state("web"), fake.state("old")) == ("running", "running", None)
