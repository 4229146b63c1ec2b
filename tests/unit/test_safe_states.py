"""salvage.safety.states and .restoring on the fake engine: the commands run in a
container and what they say, the post-command's record entry, a stop still under way, a
record that cannot be written while containers come back, and what `salvage status` says
of an interrupted restore."""

from __future__ import annotations

import dataclasses
import time

import pytest
from docker.errors import APIError
from support.fake_engine import api_error

from salvage.core.labels import Settings, parse_exit_policy
from salvage.core.model import Container
from salvage.safety import restoring, states
from salvage.safety.record import Entry, Record, RecordUnwritable

WHERE = 'container "db": pre-command "flush"'


def db(fake, **kw):
    return Container(fake.add_container("db", **kw), "db", "running")


def pre(command="flush", **kw):
    return Settings(pre=command, **kw)


def test_a_command_runs_as_its_user_and_its_exit_code_aborts_as_its_policy_says(fake):
    container = db(fake)
    fake.commands = lambda c, command: (3, "partial\nlast words\n")
    engine = fake.engine()
    problem = states.run_command(engine, container, pre(user="postgres"), "pre", 5)
    assert str(problem) == f"{WHERE}: exited with 3: last words"
    assert [run.user for run in fake._execs.values()] == ["postgres"]
    codes = parse_exit_policy("1-2")
    assert states.run_command(engine, container, pre(exit_policy=codes), "pre", 5) is None
    ignore = parse_exit_policy("ignore")
    assert states.run_command(engine, container, pre(exit_policy=ignore), "pre", 5) is None
    fake.commands = lambda c, command: (2, "")
    assert str(states.run_command(engine, container, pre(), "pre", 5)) == f"{WHERE}: exited with 2"
    fake.commands = lambda c, command: (0, "fine")
    assert states.run_command(engine, container, pre(), "pre", 5) is None
    post = Settings(post="thaw")
    assert states.run_command(engine, container, post, "post", 5) is None
    assert [run.command for run in fake._execs.values()][-1] == "thaw"


def test_a_command_that_never_ends_or_cannot_run_is_its_problem(fake):
    container = db(fake)
    fake.commands = lambda c, command: None  # it hangs
    problem = states.run_command(fake.engine(), container, pre(), "pre", 0.2)
    assert str(problem) == f"{WHERE}: still running after 0 s (left running inside the container)"
    fake.pause("db")
    problem = states.run_command(fake.engine(), container, pre(), "pre", 5)
    assert str(problem) == (
        f"{WHERE}: could not run: Container {container.id} is paused, unpause the container"
        " before exec"
    )


def test_a_due_post_command_is_entered_with_all_it_needs_to_run_later(fake):
    container = db(fake)
    settings = Settings(
        action="ignore", post="thaw", user="app", exit_policy=parse_exit_policy("4")
    )
    before = time.time()
    entry = states.post_entry(container, settings, "run1", "daily")
    assert before <= entry.since <= time.time()
    assert entry == Entry(
        container.id,
        "db",
        "post",
        "running",
        entry.since,
        "run1",
        "daily",
        command="thaw",
        user="app",
        exit_policy="4",
    )
    ran = []
    fake.commands = lambda c, command: ran.append((c.name, command)) or (3, "tolerated")
    assert states.run_recorded_post(fake.engine(), entry, 5) is None  # only 4 aborts
    assert ran == [("db", "thaw")] and [r.user for r in fake._execs.values()] == ["app"]
    fake.commands = lambda c, command: (4, "no")
    problem = states.run_recorded_post(fake.engine(), entry, 5)
    assert str(problem) == 'container "db": post-command "thaw": exited with 4: no'


def recorded_stop(fake, name):
    info = fake.inspect_container(name)
    return Entry(
        info["Id"], name, "stop", "running", time.time(), "run1", "daily",
        started_at=info["State"]["StartedAt"],
    )  # fmt: skip


class Clock:
    """time.monotonic and time.sleep on a clock of the test's: a sleep moves it on."""

    def __init__(self, monkeypatch) -> None:
        self.now, self.slept = 1000.0, []
        monkeypatch.setattr(time, "monotonic", lambda: self.now)
        monkeypatch.setattr(time, "sleep", self.sleep)

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_a_stop_under_way_is_waited_out_for_the_container_s_own_timeout(fake, monkeypatch):
    db(fake, on_term=None, stop_timeout=20)  # it ignores SIGTERM: killed after its 20 s
    entry = recorded_stop(fake, "db")
    fake.second = 1.0
    clock = Clock(monkeypatch)
    fake.begin_stop("db")
    assert str(states.restore(fake.engine(), entry)) == "started"
    assert fake.state("db") == "running" and 19.8 <= sum(clock.slept) <= 20.2


def test_a_stop_under_way_of_a_container_without_a_stop_timeout_is_waited_out_docker_s_10_s(
    fake, monkeypatch
):
    db(fake, on_term=None)  # no StopTimeout of its own: Docker's 10 s
    entry = recorded_stop(fake, "db")
    fake.second = 1.0
    clock = Clock(monkeypatch)
    fake.begin_stop("db")
    assert str(states.restore(fake.engine(), entry)) == "started"
    assert 9.8 <= sum(clock.slept) <= 10.2


def test_a_stop_that_does_not_end_in_time_leaves_it_running_and_says_so(fake, monkeypatch):
    db(fake, on_term=None, stop_timeout=1)
    entry = recorded_stop(fake, "db")
    fake.second = 100.0  # its grace period outlasts the wait (its own 1 s and 5 more)
    clock = Clock(monkeypatch)
    fake.begin_stop("db")
    outcome = states.restore(fake.engine(), entry)
    assert str(outcome) == "is running: it was never stopped"
    assert set(clock.slept) == {0.2} and 6.0 <= sum(clock.slept) <= 6.4
    assert not fake.called("start")


def test_a_record_that_cannot_be_written_brings_every_container_back_and_is_said_once(
    fake, config, monkeypatch, caplog
):
    record = Record(config.state_directory)
    entries = []
    for name in ("db", "web"):
        fake.add_container(name)
        entries.append(recorded_stop(fake, name))
        record.add(entries[-1])
        fake.stop(name)

    def full(entry):
        raise RecordUnwritable(f"cannot write {record.path}: No space left on device")

    monkeypatch.setattr(record, "remove", full)
    problems = states.restore_all(fake.engine(), record, entries)
    assert [str(p) for p in problems] == [
        f"record: cannot write {record.path}: No space left on device (its containers are"
        " back all the same)"
    ]
    assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == [str(problems[0])]
    assert (fake.state("db"), fake.state("web")) == ("running", "running")
    monkeypatch.undo()
    for entry in entries:  # once they are forgotten, nothing is left to say
        record.remove(entry)
    assert states.restore_all(fake.engine(), record, entries) == []


def test_a_record_unreadable_after_an_unwritten_removal_counts_as_still_recorded(
    fake, config, monkeypatch
):
    record = Record(config.state_directory)
    fake.add_container("db")
    entry = recorded_stop(fake, "db")
    record.add(entry)
    fake.stop("db")

    def fails(*args):
        raise RecordUnwritable("cannot write: Input/output error")

    monkeypatch.setattr(record, "remove", fails)
    monkeypatch.setattr(record, "entries", fails)
    (problem,) = states.restore_all(fake.engine(), record, [entry])
    assert problem.where == "record" and fake.state("db") == "running"


def test_a_refused_start_is_a_problem_and_the_entry_stays(fake, config):
    record = Record(config.state_directory)
    fake.add_container("db")
    entry = recorded_stop(fake, "db")
    record.add(entry)
    fake.stop("db")
    fake.fail("start", api_error(500, "no such network", "POST", "/containers/db/start"))
    (problem,) = states.restore_all(fake.engine(), record, [entry])
    assert str(problem) == (
        'container "db": could not be restored: no such network (recorded for `salvage recover`)'
    )
    assert record.entries() == [entry]


def test_status_says_what_an_interrupted_restore_keeps_stopped_and_how_to_finish_it():
    restore = restoring.entry("data", "old-data", "snap1", "run1", "daily")
    entries = [
        Entry("id-db", "db", "stop", "running", 1.0, "run1", "daily"),
        restore,
        Entry("id-web", "web", "stop", "running", 1.0, "run2", "daily"),  # another run's
    ]
    assert restoring.report(entries) == [
        {
            "volume": "data",
            "snapshot": "snap1",
            "of": "old-data",
            "tide": "daily",
            "run_id": "run1",
            "since": restore.since,
            "stopped": ["db"],
            "finish": "salvage restore old-data --to data --snapshot snap1",
        }
    ]
    assert restoring.of(entries, "data") == restore and restoring.of(entries, "db") is None
    same = restoring.entry("data", "data", "snap2", "run3", "daily")
    assert restoring.command(same) == "salvage restore data --snapshot snap2"
    assert restoring.explain(same, []) == (
        "a restore of snapshot snap2 was interrupted while replacing its content: nothing is"
        " stopped until `salvage restore data --snapshot snap2` finishes it"
    )


@pytest.mark.parametrize("change", ["stop", "pause"])
def test_a_container_removed_meanwhile_has_nothing_to_restore(fake, change):
    db(fake)
    entry = recorded_stop(fake, "db")
    fake.remove_container("db", force=True)
    entry = Entry(**{**entry.__dict__, "change": change})
    outcome = states.restore(fake.engine(), entry)
    assert (outcome.done, str(outcome)) == (None, "was removed by someone else; nothing to restore")


def test_an_outcome_says_what_was_done_or_why_nothing_was():
    assert [str(states.Outcome("started")), str(states.Outcome(None, "is gone"))] == [
        "started",
        "is gone",
    ]
    assert str(states.Outcome(None)) == "nothing to do"


def test_enter_records_the_engine_s_times_and_stops_with_the_given_timeout(fake, config):
    db(fake, on_term=None, stop_timeout=300)  # it ignores SIGTERM: killed at the timeout
    record = Record(config.state_directory)
    container = Container(fake.inspect_container("db")["Id"], "db", "running")
    before = fake.inspect_container("db")["State"]
    entry = states.enter(fake.engine(), record, container, "stop", 2, "run1", "daily")
    after = fake.inspect_container("db")["State"]
    assert entry == Entry(
        container.id, "db", "stop", "running", entry.since, "run1", "daily",
        started_at=before["StartedAt"], stopped_at=after["FinishedAt"],
    )  # fmt: skip
    assert record.entries() == [entry] and after["ExitCode"] == 137
    waited = fake.clock.now - 1_800_000_000.0
    assert 2 <= waited < 300  # the engine's clock: its grace period was the 2 s given


def test_enter_refuses_a_container_that_is_gone(fake, config):
    record = Record(config.state_directory)
    gone = Container("0" * 64, "db", "running")
    with pytest.raises(states.EngineError, match='^container "db" no longer exists$'):
        states.enter(fake.engine(), record, gone, "stop", 1, "run1", "daily")
    assert record.entries() == []


def test_a_refused_change_whose_state_cannot_be_read_stays_recorded(fake, config):
    from requests.exceptions import ConnectionError as Unreachable

    container = db(fake)
    record = Record(config.state_directory)
    fake.fail("stop", api_error(500, "refused", "POST", "/containers/db/stop"))
    fake.fail("inspect_container", Unreachable("engine went away"), nth=2)
    with pytest.raises(states.APIError, match="refused"):
        states.enter(fake.engine(), record, container, "stop", 1, "run1", "daily")
    assert [e.name for e in record.entries()] == ["db"]  # restoring it later finds out


def test_a_stop_whose_state_cannot_be_read_afterwards_is_entered_as_it_was(fake, config):
    from requests.exceptions import ConnectionError as Unreachable

    container = db(fake)
    record = Record(config.state_directory)
    fake.fail("inspect_container", Unreachable("engine went away"), nth=2)
    entry = states.enter(fake.engine(), record, container, "stop", 1, "run1", "daily")
    assert entry.stopped_at == "" and record.entries() == [entry]
    assert fake.state("db") == "exited"


def test_a_container_its_policy_keeps_starting_is_stopped_four_times_at_most(fake, config):
    container = Container(fake.add_container("db", restart="always"), "db", "running")
    for _ in range(5):  # the engine restarts after each of the next five stops
        fake.then("stop", fake.restart_engine)
    record = Record(config.state_directory)
    entry = states.enter(fake.engine(), record, container, "stop", 1, "run1", "daily")
    assert len(fake.called("stop")) == 4 and fake.state("db") == "running"
    assert entry.stopped_at == ""  # not stopped: the backup will find it disturbed


def test_a_restore_entry_holds_the_target_the_snapshot_and_its_source():
    entry = restoring.entry("data", "old-data", "snap1", "run1", "daily")
    assert entry == Entry(
        "volume:data", "data", "restore", "snap1", entry.since, "run1", "daily",
        command="old-data",
    )  # fmt: skip
    assert isinstance(entry.since, float)
    assert restoring.explain(entry, ["db", "web"]) == (
        "a restore of snapshot snap1 was interrupted while replacing its content: its users"
        " db, web stay stopped until `salvage restore old-data --to data --snapshot snap1`"
        " finishes it"
    )


def after_stop(fake, then):
    """A container salvage stopped (entry, as recorded), and what happened since."""
    db(fake)
    entry = recorded_stop(fake, "db")
    fake.stop("db")
    then(fake)
    return entry


def after_pause(fake, then):
    db(fake)
    entry = dataclasses.replace(recorded_stop(fake, "db"), change="pause")
    fake.pause("db")
    then(fake)
    return entry


@pytest.mark.parametrize(
    "made, then, outcome",
    [
        (after_stop, lambda fake: None, ("started", None)),
        (
            after_stop,
            lambda fake: fake.start("db"),
            (None, "is running: started by someone else meanwhile"),
        ),
        (
            after_stop,
            lambda fake: (fake.start("db"), fake.stop("db")),
            (None, "was started and stopped again by someone else; left stopped"),
        ),
        (
            after_stop,
            lambda fake: (fake.start("db"), fake.pause("db")),
            (None, "was paused by someone else; left paused"),
        ),
        (
            after_stop,
            lambda fake: fake.remove_container("db"),
            (None, "was removed by someone else; nothing to restore"),
        ),
        (
            after_stop,
            lambda fake: (fake.pin("db"), pytest.raises(APIError, fake.remove_container, "db")),
            (None, "is dead (someone else's removal failed); left as it is"),
        ),
        (after_pause, lambda fake: None, ("unpaused", None)),
        (
            after_pause,
            lambda fake: fake.unpause("db"),
            (None, "is running: started by someone else meanwhile"),
        ),
        # Paused, then stopped by an engine restart: salvage's to start again.
        (after_pause, lambda fake: fake.restart_engine(), ("started", None)),
    ],
)
def test_restore_brings_back_what_salvage_changed_and_leaves_a_person_s_change(
    fake, made, then, outcome
):
    entry = made(fake, then)
    done = states.restore(fake.engine(), entry)
    assert (done.done, done.note) == outcome


def test_restore_all_tells_the_journal_what_came_back_what_was_left_and_what_failed(
    fake, config, caplog
):
    caplog.set_level("INFO", logger="salvage")
    record = Record(config.state_directory)
    entries = []
    for name in ("db", "cache", "stuck"):
        fake.add_container(name)
        entries.append(recorded_stop(fake, name))
        record.add(entries[-1])
        fake.stop(name)
    fake.start("cache")  # a person's
    fake.fail("start", api_error(500, "no such network", "POST", "/start"))  # stuck's: first
    problems = states.restore_all(fake.engine(), record, entries)
    said = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "salvage"]
    assert said == [
        (
            "ERROR",
            'container "stuck": could not be restored: no such network (recorded for'
            " `salvage recover`)",
        ),
        ("WARNING", 'container "cache": is running: started by someone else meanwhile'),
        ("INFO", "container db: started"),
    ]
    assert [str(p) for p in problems] == [said[0][1]]
    assert [e.name for e in record.entries()] == ["stuck"]


def test_a_record_emptied_after_an_unwritten_removal_has_nothing_left_to_say(
    fake, config, monkeypatch
):
    """Disk full: the first removal cannot be appended; the last one empties the file
    (a truncation needs no space), so nothing is left recorded and nothing is said."""
    import errno
    import os

    record = Record(config.state_directory)
    entries = []
    for name in ("db", "web"):
        fake.add_container(name)
        entries.append(recorded_stop(fake, name))
        record.add(entries[-1])
        fake.stop(name)

    def full(fd, data, offset):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "pwrite", full)
    assert states.restore_all(fake.engine(), record, entries) == []
    monkeypatch.undo()
    assert record.entries() == [] and (fake.state("db"), fake.state("web")) == ("running",) * 2
