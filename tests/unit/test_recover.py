"""`salvage recover` on the fake engine: it brings back what the record says, as the
record says, and never undoes a person's own change."""

from __future__ import annotations

import dataclasses

import pytest
from docker.errors import APIError
from support.fake_engine import api_error

from salvage.actions.recover import recover
from salvage.safety import stage_entries
from salvage.safety.record import Entry, Record, RecordDamaged, RecordUnwritable


def recorded(fake, config, name, change="stop", **kw):
    """What a run that died wrote before changing `name` (and, for a stop, once done)."""
    info = fake.inspect_container(name)
    entry = Entry(
        info["Id"],
        name,
        change,
        "running",
        1.0,
        "deadbeef" * 4,
        "daily",
        started_at=info["State"]["StartedAt"],
        **kw,
    )
    Record(config.state_directory).add(entry)
    return entry


def test_recover_starts_and_unpauses_what_the_record_says(fake, config):
    fake.add_container("db")
    fake.add_container("web")
    recorded(fake, config, "db")
    recorded(fake, config, "web", "pause")
    fake.stop("db")
    fake.pause("web")
    assert recover(fake.engine(), config) == []
    assert (fake.state("db"), fake.state("web")) == ("running", "running")
    assert Record(config.state_directory).entries() == []


def test_a_person_s_start_and_stop_since_stands(fake, config):
    fake.add_container("db")
    fake.add_container("cache")
    recorded(fake, config, "db")
    recorded(fake, config, "cache")
    fake.stop("db")
    fake.start("db")
    fake.stop("db")  # started, then stopped again by a person: left stopped
    fake.stop("cache")
    fake.start("cache")  # started by a person: nothing to do
    fake.calls.clear()
    assert recover(fake.engine(), config) == []
    assert (fake.state("db"), fake.state("cache")) == ("exited", "running")
    assert not fake.called("start") and not fake.called("unpause")
    assert Record(config.state_directory).entries() == []


def test_a_paused_one_salvage_stopped_is_left_paused_and_a_removed_one_forgotten(fake, config):
    fake.add_container("db")
    fake.add_container("gone")
    recorded(fake, config, "db")
    recorded(fake, config, "gone")
    fake.pause("db")  # a person's pause
    fake.remove_container("gone", force=True)
    assert recover(fake.engine(), config) == []
    assert fake.state("db") == "paused" and Record(config.state_directory).entries() == []


def test_a_paused_one_found_stopped_was_stopped_by_an_engine_restart_and_is_started(fake, config):
    fake.add_container("web")
    recorded(fake, config, "web", "pause")
    fake.pause("web")
    fake.stop("web")
    assert recover(fake.engine(), config) == [] and fake.state("web") == "running"


def test_a_due_post_command_runs_in_a_running_container_only(fake, config):
    fake.add_container("db")
    fake.add_container("idle", "exited")
    recorded(fake, config, "db", "post", command="thaw")
    recorded(fake, config, "idle", "post", command="thaw")
    ran = []
    fake.commands = lambda container, command: ran.append((container.name, command)) or (0, "")
    assert recover(fake.engine(), config) == []
    assert ran == [("db", "thaw")] and Record(config.state_directory).entries() == []


def test_a_failing_post_command_is_a_problem(fake, config):
    fake.add_container("db")
    recorded(fake, config, "db", "post", command="thaw")
    fake.commands = lambda container, command: (2, "no")
    problems = recover(fake.engine(), config)
    assert [str(p) for p in problems] == ['container "db": post-command "thaw": exited with 2: no']


def test_a_container_the_engine_cannot_start_stays_recorded(fake, config):
    fake.add_container("db")
    entry = recorded(fake, config, "db")
    fake.stop("db")
    fake.fail("start", APIError("x", explanation="cannot start: no such network"))
    problems = recover(fake.engine(), config)
    assert [str(p) for p in problems] == [
        'container "db": could not be restored (stop by run deadbeef of tide daily):'
        " cannot start: no such network"
    ]
    assert Record(config.state_directory).entries() == [entry]
    assert recover(fake.engine(), config) == [] and fake.state("db") == "running"


def test_a_damaged_record_refuses_and_touches_nothing(fake, config):
    fake.add_container("db")
    recorded(fake, config, "db")
    fake.stop("db")
    with open(Record(config.state_directory).path, "ab") as stream:
        stream.write(b"not json\n")
    fake.calls.clear()
    with pytest.raises(RecordDamaged, match="is damaged"):
        recover(fake.engine(), config)
    assert fake.calls == [] and fake.state("db") == "exited"
    assert RecordDamaged("x").exit_code == 2


def test_leftover_cranes_of_this_salvage_are_removed_and_others_left(fake, config):
    mine = {"salvage.crane": "tar", "salvage.instance": config.state_directory}
    fake.add_container("salvage-crane-data-1", labels=mine)
    fake.add_container("theirs", labels={"salvage.crane": "tar", "salvage.instance": "/x"})
    assert recover(fake.engine(), config) == []
    assert fake.state("salvage-crane-data-1") is None and fake.state("theirs") == "running"


def test_a_crane_that_cannot_be_removed_is_said(fake, config):
    mine = {"salvage.crane": "tar", "salvage.instance": config.state_directory}
    fake.add_container("salvage-crane-data-1", labels=mine)
    fake.fail("remove_container", APIError("x", explanation="device busy"))
    problems = recover(fake.engine(), config)
    assert [str(p) for p in problems] == [
        'crane "salvage-crane-data-1": cannot be removed: device busy'
    ]


def test_leftover_cranes_cannot_be_listed(fake, config):
    fake.fail("containers", APIError("x", explanation="forbidden"))
    problems = recover(fake.engine(), config)
    assert "cannot list leftover cranes: forbidden" in [p.message for p in problems]


def test_a_half_restored_volume_keeps_its_users_down_and_a_run_skips_it(fake, config):
    from salvage.actions.run import TideRun
    from salvage.safety import restoring

    fake.add_volume("data")
    fake.add_container("db", labels={"salvage.tide.daily": "data"}, volumes=("data",))
    entry = recorded(fake, config, "db")
    fake.stop("db")
    record = Record(config.state_directory)
    record.add(restoring.entry("data", "data", "snap1", entry.run_id, "daily"))
    problems = recover(fake.engine(), config)
    assert [str(p) for p in problems] == [
        "volume data: a restore of snapshot snap1 was interrupted while replacing its content:"
        " its users db stay stopped until `salvage restore data --snapshot snap1` finishes it"
    ]
    assert fake.state("db") == "exited"
    result = TideRun(fake.engine(), config, "daily").run()  # recovers at its start too
    assert result.volumes[0].message == (
        "half restored: not backed up until `salvage restore data --snapshot snap1`"
    )
    assert fake.state("db") == "exited" and len(record.entries()) == 2


def test_recover_removes_the_stage_volumes_and_the_stager_a_dead_run_recorded(fake, config):
    """Entered before they were made: one made, one never made, and the stager that mounts
    the first (removed first, as the newest entry)."""
    fake.add_volume("salvage-stage-0123456789ab")
    fake.add_container("salvage-crane-stage-data-1", volumes=("salvage-stage-0123456789ab",))
    record = Record(config.state_directory)
    for kind, name in (
        ("stage", "salvage-stage-0123456789ab"),
        ("stage", "salvage-stage-never0made00"),
        ("stager", "salvage-crane-stage-data-1"),
    ):
        record.add(stage_entries.entry(kind, name, "data", "deadbeef" * 4, "daily"))
    assert recover(fake.engine(), config) == []
    assert "salvage-stage-0123456789ab" not in fake.volume_list
    assert not [c for c in fake.by_id.values() if c.name == "salvage-crane-stage-data-1"]
    assert record.entries() == []


def test_a_stage_volume_the_engine_will_not_remove_stays_recorded(fake, config):
    fake.add_volume("salvage-stage-0123456789ab")
    app = fake.add_container("app", volumes=("salvage-stage-0123456789ab",))  # in use: refused
    entry = stage_entries.entry("stage", "salvage-stage-0123456789ab", "data", "d" * 32, "daily")
    Record(config.state_directory).add(entry)
    problems = recover(fake.engine(), config)
    assert [str(p) for p in problems] == [
        "stage volume salvage-stage-0123456789ab: cannot be removed (run dddddddd):"
        f" remove salvage-stage-0123456789ab: volume is in use - [{app}]"
    ]
    assert Record(config.state_directory).entries() == [entry]


def test_a_stage_a_leftover_crane_still_mounts_is_removed_after_the_crane(fake, config):
    fake.add_volume("salvage-stage-0123456789ab")
    mine = {"salvage.crane": "tar", "salvage.instance": config.state_directory}
    fake.add_container("crane", labels=mine, volumes=("salvage-stage-0123456789ab",))
    entry = stage_entries.entry("stage", "salvage-stage-0123456789ab", "data", "d" * 32, "daily")
    Record(config.state_directory).add(entry)
    assert recover(fake.engine(), config) == []
    assert "salvage-stage-0123456789ab" not in fake.volume_list
    assert Record(config.state_directory).entries() == []


def test_one_that_cannot_be_started_stays_recorded_and_the_others_are_forgotten(fake, config):
    for name in ("db", "web", "cache"):
        fake.add_container(name)
        recorded(fake, config, name)
        fake.stop(name)
    web = fake.inspect_container("web")["Id"]
    fake.fail("start", api_error(500, "cannot start: no such network", "POST", "/start"), nth=2)
    problems = recover(fake.engine(), config)  # newest first: cache, web (refused), db
    assert [p.where for p in problems] == ['container "web"']
    assert [(e.name, e.container) for e in Record(config.state_directory).entries()] == [
        ("web", web)
    ]
    assert (fake.state("db"), fake.state("web"), fake.state("cache")) == (
        "running",
        "exited",
        "running",
    )
    assert recover(fake.engine(), config) == [] and fake.state("web") == "running"


def test_recover_starts_a_dependency_before_what_depends_on_it(fake, config):
    """A run stops a dependent (web) before its dependency (db): recover starts them in the
    reverse order of the record."""
    for name in ("web", "db"):
        fake.add_container(name)
        recorded(fake, config, name)
        fake.stop(name)
    assert recover(fake.engine(), config) == []
    started = [fake.inspect_container(ref)["Name"] for (ref,) in fake.called("start")]
    assert started == ["/db", "/web"]


def test_a_stop_still_under_way_is_waited_out_then_the_container_started(fake, config):
    """salvage died during the container's grace period: the engine goes on stopping it."""
    fake.add_container("db", on_term=None, stop_timeout=30)  # it ignores SIGTERM
    recorded(fake, config, "db")
    fake.begin_stop("db")  # SIGKILL at the end of its 30 s (0.3 s here)
    assert fake.state("db") == "running"
    assert recover(fake.engine(), config) == []
    assert fake.state("db") == "running" and len(fake.called("start")) == 1
    assert Record(config.state_directory).entries() == []


def test_a_dead_container_someone_failed_to_remove_is_left_and_forgotten(fake, config, caplog):
    fake.add_container("db")
    recorded(fake, config, "db")
    fake.stop("db")
    fake.pin("db")  # `docker rm db` fails half way: the engine marks it dead
    with pytest.raises(APIError):
        fake.remove_container("db")
    assert recover(fake.engine(), config) == []
    assert not fake.called("start") and fake.state("db") == "dead"
    assert Record(config.state_directory).entries() == []
    assert 'container "db" (stop by run deadbeef of tide daily): is dead' in caplog.text


def test_a_record_recover_cannot_write_is_said_and_the_containers_are_back(
    fake, config, monkeypatch
):
    fake.add_container("db")
    recorded(fake, config, "db")
    fake.stop("db")

    def full(self, entry):
        raise RecordUnwritable(f"cannot write {self.path}: No space left on device")

    monkeypatch.setattr(Record, "remove", full)
    problems = recover(fake.engine(), config)
    path = Record(config.state_directory).path
    assert [str(p) for p in problems] == [f"recover: cannot write {path}: No space left on device"]
    assert fake.state("db") == "running"


def test_an_exited_leftover_crane_is_removed_too(fake, config):
    mine = {"salvage.crane": "tar", "salvage.instance": config.state_directory}
    fake.add_container("salvage-crane-data-1", "exited", labels=mine)
    assert recover(fake.engine(), config) == []
    assert fake.state("salvage-crane-data-1") is None


def test_a_stage_entry_names_its_kind_name_volumes_run_and_tide():
    entry = stage_entries.entry("stager", "salvage-crane-stage-data-1", "data logs", "r1", "daily")
    assert entry == Entry(
        "stager:salvage-crane-stage-data-1", "data logs", "stager", "", entry.since, "r1", "daily"
    )
    assert isinstance(entry.since, float)
    assert stage_entries.describe(entry) == 'stager "salvage-crane-stage-data-1"'


def test_only_what_recover_removed_is_said_removed(fake, config, caplog):
    caplog.set_level("INFO", logger="salvage")
    fake.add_volume("salvage-stage-0123456789ab")
    record = Record(config.state_directory)
    for name in ("salvage-stage-0123456789ab", "salvage-stage-never0made00"):
        record.add(stage_entries.entry("stage", name, "data", "d" * 32, "daily"))
    assert recover(fake.engine(), config) == []
    assert "removed leftover stage volume salvage-stage-0123456789ab" in caplog.text
    assert "never0made00" not in caplog.text


def test_a_stager_the_engine_will_not_remove_is_said_by_name(fake, config):
    fake.add_container("salvage-crane-stage-data-1")
    entry = stage_entries.entry("stager", "salvage-crane-stage-data-1", "data", "d" * 32, "daily")
    Record(config.state_directory).add(entry)
    fake.fail("remove_container", api_error(500, "device busy", "DELETE", "/containers/x"))
    problems = recover(fake.engine(), config)
    assert [str(p) for p in problems] == [
        'stager "salvage-crane-stage-data-1": cannot be removed (run dddddddd): device busy'
    ]


def test_recover_tells_the_journal_what_it_did_to_each_entry_and_why(fake, config, caplog):
    caplog.set_level("INFO", logger="salvage")
    config = dataclasses.replace(
        config, tides={"daily": dataclasses.replace(config.tides["daily"], command_timeout=0.3)}
    )
    for name in ("db", "cache", "web", "slow", "stuck"):
        fake.add_container(name)
    fake.add_container("idle", "exited")
    recorded(fake, config, "db")
    recorded(fake, config, "cache")
    recorded(fake, config, "stuck")
    recorded(fake, config, "web", "post", command="thaw")
    recorded(fake, config, "slow", "post", command="hang")  # longer than the tide's 0.3 s
    recorded(fake, config, "idle", "post", command="thaw")
    for name in ("db", "cache", "stuck"):
        fake.stop(name)
    fake.start("cache")  # a person's
    fake.commands = lambda container, command: None if command == "hang" else (0, "")
    mine = {"salvage.crane": "tar", "salvage.instance": config.state_directory}
    fake.add_container("salvage-crane-data-1", labels=mine)
    fake.fail("start", api_error(500, "no such network", "POST", "/start"))  # stuck's
    problems = recover(fake.engine(), config)
    why = "stop by run deadbeef of tide daily"
    said = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "salvage"]
    assert said == [
        ("WARNING", 'recover: container "idle": not running; its post-command is not run'),
        (
            "ERROR",
            'recover: container "slow": post-command "hang": still running after 0 s (left'
            " running inside the container)",
        ),
        ("INFO", 'recover: container "web": ran its post-command'),
        ("ERROR", f'recover: container "stuck": could not be restored ({why}): no such network'),
        (
            "WARNING",
            f'recover: container "cache" ({why}): is running: started by someone else meanwhile',
        ),
        ("INFO", f'recover: container "db" ({why}): started'),
        ("INFO", "recover: removed leftover crane salvage-crane-data-1"),
    ]
    assert [p.where for p in problems] == [
        'container "slow": post-command "hang"',
        'container "stuck"',
    ]
    assert [e.name for e in Record(config.state_directory).entries()] == ["stuck"]


def test_recover_tells_the_journal_of_a_half_restored_volume_and_an_unwritable_record(
    fake, config, caplog, monkeypatch
):
    from salvage.safety import restoring

    fake.add_volume("data")
    fake.add_container("db", volumes=("data",))
    fake.add_container("web")
    entry = recorded(fake, config, "db")
    web = recorded(fake, config, "web", "pause")
    Record(config.state_directory).add(dataclasses.replace(web, run_id="another run"))
    fake.stop("db")
    fake.pause("web")
    record = Record(config.state_directory)
    record.add(restoring.entry("data", "data", "snap1", entry.run_id, "daily"))

    def full(self, entry):
        raise RecordUnwritable(f"cannot write {self.path}: No space left on device")

    monkeypatch.setattr(Record, "remove", full)
    problems = recover(fake.engine(), config)
    said = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert said == [f"recover: {problems[0]}", str(problems[1])]
    assert [p.where for p in problems] == ["volume data", "recover"]
    assert problems[1].message.endswith("record.jsonl: No space left on device")
    assert fake.state("web") == "running" and fake.state("db") == "exited"


def test_leftover_scratch_and_stage_volumes_of_this_salvage_are_removed_each_said(
    fake, config, caplog
):
    caplog.set_level("INFO", logger="salvage")
    mine = {"salvage.instance": config.state_directory}
    fake.add_volume("salvage-scratch-1", {"salvage.scratch": "data", **mine})
    fake.add_volume("salvage-stage-1", {"salvage.stage": "data", **mine})
    fake.add_volume("salvage-stage-2", {"salvage.stage": "logs", **mine})
    fake.add_volume("salvage-stage-theirs", {"salvage.stage": "x", "salvage.instance": "/x"})
    fake.add_container("holder", volumes=("salvage-stage-2",))  # in use: not removed
    problems = recover(fake.engine(), config)
    assert [str(p) for p in problems] == [
        "stage volume salvage-stage-2: cannot be removed: remove salvage-stage-2: volume is in"
        f" use - [{fake.inspect_container('holder')['Id']}]"
    ]
    assert sorted(fake.volume_list) == ["salvage-stage-2", "salvage-stage-theirs"]
    said = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "salvage"]
    assert said == [
        ("INFO", "recover: removed leftover scratch volume salvage-scratch-1"),
        ("INFO", "recover: removed leftover stage volume salvage-stage-1"),
        ("ERROR", f"recover: {problems[0]}"),
    ]


def test_every_stage_entry_is_handled_whatever_comes_before_it(fake, config):
    """Stages among containers' entries, and one that cannot be removed: each of the
    others is still removed."""
    for name in ("salvage-stage-a", "salvage-stage-b", "salvage-stage-c"):
        fake.add_volume(name)
    fake.add_container("holder", volumes=("salvage-stage-c",))
    record = Record(config.state_directory)
    record.add(stage_entries.entry("stage", "salvage-stage-a", "data", "d" * 32, "daily"))
    fake.add_container("db")
    recorded(fake, config, "db")
    fake.stop("db")
    record.add(stage_entries.entry("stage", "salvage-stage-b", "data", "d" * 32, "daily"))
    record.add(stage_entries.entry("stage", "salvage-stage-c", "data", "d" * 32, "daily"))
    problems = recover(fake.engine(), config)
    assert [p.where for p in problems] == ["stage volume salvage-stage-c"]
    assert sorted(fake.volume_list) == ["salvage-stage-c"] and fake.state("db") == "running"


def test_a_post_command_of_a_tide_no_longer_configured_runs_with_the_default_timeout(fake, config):
    fake.add_container("db")
    entry = recorded(fake, config, "db", "post", command="thaw")
    Record(config.state_directory).add(dataclasses.replace(entry, tide="weekly"))
    assert recover(fake.engine(), config) == []
    assert [run.command for run in fake._execs.values()] == ["thaw"]


def test_cranes_that_cannot_be_listed_are_recover_s_problem(fake, config):
    fake.fail("containers", api_error(403, "forbidden", "GET", "/containers/json"))
    (problem,) = [p for p in recover(fake.engine(), config) if "cranes" in p.message]
    assert problem.where == "recover"
