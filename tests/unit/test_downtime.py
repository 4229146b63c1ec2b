"""The one downtime mechanism (salvage.safety.downtime) on the fake engine: recorded before each
change, brought back by `end` whatever happened, interrupted by a signal."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest
from docker.errors import APIError
from requests.exceptions import ConnectionError as RequestsConnectionError
from support.fake_engine import api_error

from salvage.core.labels import Settings
from salvage.core.model import Container
from salvage.engine.client import EngineError
from salvage.safety import downtime
from salvage.safety.downtime import Downtime, Interrupted, signals_unwind
from salvage.safety.record import Record, RecordUnwritable


def container(fake, name):
    return Container(fake.inspect_container(name)["Id"], name, "running")


def killed(fake, crane):
    """The interrupt's thread kills the cranes: wait for it."""
    deadline = time.monotonic() + 5
    while fake.state(fake.by_id[crane].name) == "running" and time.monotonic() < deadline:
        time.sleep(0.01)


def test_end_brings_back_what_was_recorded_newest_first_and_stops_the_clock(fake, config):
    fake.add_container("db")
    fake.add_container("web")
    record = Record(config.state_directory)
    down = Downtime(fake.engine(), record, "run1", "daily")
    down.enter(container(fake, "db"), "stop", 0)
    down.enter(container(fake, "web"), "pause", 0)
    assert [e.change for e in record.entries()] == ["stop", "pause"]
    assert (fake.state("db"), fake.state("web")) == ("exited", "paused")
    fake.calls.clear()
    assert down.end() == []
    assert [name for name, _ in fake.calls if name in ("start", "unpause")] == ["unpause", "start"]
    assert record.entries() == [] and down.seconds > 0


def test_a_change_whose_answer_never_came_is_brought_back_all_the_same(fake, config):
    fake.add_container("db")
    down = Downtime(fake.engine(), Record(config.state_directory), "run1", "daily")
    fake.fail("stop", RequestsConnectionError("engine went away"), after=True)
    with pytest.raises(RequestsConnectionError):
        down.enter(container(fake, "db"), "stop", 0)
    assert fake.state("db") == "exited" and len(down.entries) == 1
    assert down.end() == [] and fake.state("db") == "running"


def test_a_container_that_cannot_be_brought_back_stays_recorded_for_recover(fake, config):
    fake.add_container("db")
    record = Record(config.state_directory)
    down = Downtime(fake.engine(), record, "run1", "daily")
    down.enter(container(fake, "db"), "stop", 0)
    fake.fail("inspect_container", RequestsConnectionError("engine went away"))
    problems = down.end()
    assert [str(p) for p in problems] == [
        'container "db": could not be restored: engine went away (recorded for `salvage recover`)'
    ]
    assert [e.name for e in record.entries()] == ["db"]


def test_a_due_post_command_is_recorded_until_it_ran(fake, config):
    fake.add_container("db")
    record = Record(config.state_directory)
    down = Downtime(fake.engine(), record, "run1", "daily")
    down.post_due(container(fake, "db"), Settings(action="ignore", post="thaw"))
    down.post_due(container(fake, "db"), Settings(action="ignore", post="thaw"))
    assert [(e.change, e.command) for e in record.entries()] == [("post", "thaw")]
    down.end()
    down.posts_done()
    assert record.entries() == []


def test_an_unwritable_record_stops_nothing_more(fake, config, monkeypatch):
    fake.add_container("db")
    record = Record(config.state_directory)
    down = Downtime(fake.engine(), record, "run1", "daily")

    def full(entry):
        raise RecordUnwritable(f"cannot write {record.path}: No space left on device")

    monkeypatch.setattr(record, "add", full)
    with pytest.raises(RecordUnwritable):
        down.enter(container(fake, "db"), "stop", 0)
    assert fake.state("db") == "running" and not fake.called("stop")
    assert down.end() == []


def test_a_disturbance_is_named(fake, config):
    fake.add_container("db")
    fake.add_container("web")
    down = Downtime(fake.engine(), Record(config.state_directory), "run1", "daily")
    down.enter(container(fake, "db"), "stop", 0)
    down.enter(container(fake, "web"), "pause", 0)
    assert down.disturbed() is None
    fake.unpause("web")
    assert down.disturbed() == 'container "web" was running by someone else during the backup'
    fake.pause("web")
    fake.start("db")
    fake.stop("db")
    assert down.disturbed() == (
        'container "db" was started (and stopped again) by someone else during the backup'
    )
    fake.remove_container("db", force=True)
    assert down.disturbed() == 'container "db" was removed'
    down.end()


def test_a_signal_interrupts_every_open_downtime_kills_its_cranes_and_end_still_unwinds(
    fake, config
):
    fake.add_container("db")
    fake.add_container("db2")
    crane = fake.add_container("crane", labels={"salvage.run": "run1"})
    record = Record(config.state_directory)
    heard = []
    with signals_unwind(heard.append) as received:
        down = Downtime(fake.engine(), record, "run1", "daily")
        down.enter(container(fake, "db"), "stop", 0)
        os.kill(os.getpid(), signal.SIGHUP)
        with pytest.raises(Interrupted, match=r'container "db2": interrupted \(SIGHUP\)'):
            down.enter(container(fake, "db2"), "stop", 0)
        deadline = time.monotonic() + 5  # handed on by a thread, not by the handler itself
        while not heard and time.monotonic() < deadline:
            time.sleep(0.01)
        assert received == ["SIGHUP"] and heard == ["SIGHUP"]
        killed(fake, crane)
        assert fake.inspect_container(crane)["State"]["ExitCode"] == 137
        assert down.end() == []
        # A downtime opened after the signal starts interrupted: it touches nothing.
        later = Downtime(fake.engine(), record, "run2", "daily")
        with pytest.raises(Interrupted):
            later.check("group g")
        later.close()
    assert (fake.state("db"), fake.state("db2")) == ("running", "running")
    assert downtime._open == [] and Interrupted  # every downtime closed


def test_the_owner_s_cancellation_says_the_owner_s_reason(fake, config):
    cancelled = threading.Event()
    down = Downtime(
        fake.engine(), Record(config.state_directory), "r", "daily", cancelled, lambda: "shutdown"
    )
    down.check("here")
    cancelled.set()
    with pytest.raises(Interrupted, match=r"here: interrupted \(shutdown\)"):
        down.check("here")
    down.close()


@pytest.mark.parametrize("action, state", [("stop", "exited"), ("pause", "paused")])
def test_a_change_the_engine_made_then_answered_with_an_error_is_brought_back(
    fake, config, action, state
):
    fake.add_container("db")
    record = Record(config.state_directory)
    down = Downtime(fake.engine(), record, "run1", "daily")
    error = api_error(500, "driver failed after the change", "POST", f"/containers/db/{action}")
    fake.fail(action, error, after=True)
    with pytest.raises(APIError, match="driver failed"):
        down.enter(container(fake, "db"), action, 0)
    assert fake.state("db") == state and [e.name for e in record.entries()] == ["db"]
    assert down.end() == [] and fake.state("db") == "running"
    assert record.entries() == []


@pytest.mark.parametrize("action", ["stop", "pause"])
def test_a_change_the_engine_refused_leaves_nothing_to_undo(fake, config, action):
    fake.add_container("db")
    record = Record(config.state_directory)
    down = Downtime(fake.engine(), record, "run1", "daily")
    fake.fail(action, api_error(409, "refused", "POST", f"/containers/db/{action}"))
    with pytest.raises(APIError):
        down.enter(container(fake, "db"), action, 0)
    assert fake.state("db") == "running" and record.entries() == [] and down.entries == []
    fake.calls.clear()
    assert down.end() == [] and fake.calls == []


def test_a_container_started_with_rm_is_never_stopped_whatever_the_plan_said(fake, config):
    fake.add_container("job", auto_remove=True)
    record = Record(config.state_directory)
    down = Downtime(fake.engine(), record, "run1", "daily")
    planned = container(fake, "job")  # the plan saw no --rm (it was started with it since)
    with pytest.raises(EngineError) as raised:
        down.enter(planned, "stop", 0)
    assert str(raised.value) == (
        'container "job" was started with --rm (AutoRemove): not stopped, which would delete it'
    )
    assert fake.state("job") == "running" and not fake.called("stop")
    assert record.entries() == []
    down.enter(planned, "pause", 0)  # a pause deletes nothing
    assert fake.state("job") == "paused"
    assert down.end() == [] and fake.state("job") == "running"


def test_a_container_its_restart_policy_starts_again_right_after_the_stop_is_stopped_again(
    fake, config
):
    fake.add_container("db", restart="always")
    # The engine restarted as the stop returned: "always" starts what was stopped.
    fake.then("stop", fake.restart_engine)
    record = Record(config.state_directory)
    down = Downtime(fake.engine(), record, "run1", "daily")
    entry = down.enter(container(fake, "db"), "stop", 0)
    assert fake.state("db") == "exited" and len(fake.called("stop")) == 2
    assert entry.stopped_at == fake.inspect_container("db")["State"]["FinishedAt"]
    assert down.disturbed() is None
    assert down.end() == [] and fake.state("db") == "running"


def test_a_due_post_command_is_entered_under_its_run_and_tide(fake, config):
    fake.add_container("db")
    record = Record(config.state_directory)
    down = Downtime(fake.engine(), record, "run1", "daily")
    down.post_due(container(fake, "db"), Settings(action="ignore", post="thaw", user="app"))
    (entry,) = record.entries()
    assert (entry.run_id, entry.tide, entry.user) == ("run1", "daily", "app")
    monkeypatch = pytest.MonkeyPatch()

    def full(entry):
        raise RecordUnwritable(f"cannot write {record.path}: No space left on device")

    monkeypatch.setattr(record, "remove", full)
    down.posts_done()  # then `recover` finds it not due (the container is running)
    monkeypatch.undo()
    down.close()


def test_an_interrupt_says_its_reason_and_kills_the_run_s_cranes(fake, config, caplog):
    gone = fake.add_container("crane-1", labels={"salvage.run": "run1"})
    mine = fake.add_container("crane-2", labels={"salvage.run": "run1"})
    theirs = fake.add_container("crane-3", labels={"salvage.run": "run2"})
    fake.fail("kill", api_error(404, f"No such container: {gone}", "POST", "/kill"))
    down = Downtime(fake.engine(), Record(config.state_directory), "run1", "daily")
    down.interrupt("SIGTERM")
    down.interrupt("SIGINT")  # once is enough
    killed(fake, mine)
    with pytest.raises(Interrupted, match=r'^container "db": interrupted \(SIGTERM\)$'):
        down.check('container "db"')
    said = [r.getMessage() for r in caplog.records if r.name == "salvage"]
    assert said == ["interrupted (SIGTERM): stopping the cranes"]
    # The first kill found its crane gone already: the others are still killed.
    assert [fake.inspect_container(c)["State"]["Status"] for c in (mine, theirs)] == [
        "exited",
        "running",
    ]
    down.close()


def test_cranes_that_cannot_be_listed_are_said(fake, config, caplog):
    fake.fail("containers", api_error(403, "forbidden", "GET", "/containers/json"))
    downtime.stop_cranes(fake.engine(), "0123456789abcdef")
    (said,) = [r.getMessage() for r in caplog.records if r.name == "salvage"]
    assert said == (
        "cannot stop the cranes of run 01234567: the Docker engine refused GET /containers/json"
        " (403 Forbidden): does a socket proxy in front of it allow this call? (see"
        " docs/docker-api.md)"
    )


def test_a_cancelled_downtime_without_a_reason_says_cancelled(fake, config):
    cancelled = threading.Event()
    cancelled.set()
    down = Downtime(fake.engine(), Record(config.state_directory), "r", "daily", cancelled)
    with pytest.raises(Interrupted, match=r"^here: interrupted \(cancelled\)$"):
        down.check("here")
    down.close()


def test_a_real_failure_wins_over_the_interrupt_it_brought(fake, config):
    """Two containers at once: one's stop is refused; the other sees the run cancelled."""
    from salvage.core.ordering import Order

    fake.add_container("a")
    fake.add_container("b")
    down = Downtime(fake.engine(), Record(config.state_directory), "run1", "daily")
    fake.fail("stop", api_error(409, "refused", "POST", "/containers/a/stop"))

    def before(change):
        if change.name == "b":  # once a's stop was refused
            deadline = time.monotonic() + 5
            while not fake.called("stop") and time.monotonic() < deadline:
                time.sleep(0.01)
            down.cancelled.set()

    changes = [(container(fake, name), "stop", 0) for name in ("a", "b")]
    with pytest.raises(APIError, match="refused"):
        down.enter_all(changes, Order(), before)
    assert down.end() == [] and (fake.state("a"), fake.state("b")) == ("running", "running")


def test_enter_passes_its_stop_timeout_and_tide_and_refuses_an_unknown_action(fake, config):
    fake.add_container("db", on_term=None, stop_timeout=300)  # killed at the timeout
    down = Downtime(fake.engine(), Record(config.state_directory), "run1", "daily")
    entry = down.enter(container(fake, "db"), "stop", 2)
    assert (entry.run_id, entry.tide, isinstance(entry.since, float)) == ("run1", "daily", True)
    assert 2 <= fake.clock.now - 1_800_000_000.0 < 300  # its grace period: the 2 s given
    fake.add_container("web")
    with pytest.raises(ValueError, match="^freeze$"):
        down.enter(container(fake, "web"), "freeze", 0)
    down.end()


def test_end_brings_them_back_in_the_order_it_was_given(fake, config):
    from salvage.core.ordering import Order

    fake.add_container("db")
    fake.add_container("web")
    down = Downtime(fake.engine(), Record(config.state_directory), "run1", "daily")
    down.enter(container(fake, "db"), "stop", 0)
    down.enter(container(fake, "web"), "stop", 0)
    db_id, web_id = (fake.inspect_container(n)["Id"] for n in ("db", "web"))
    down.order = Order(after={web_id: (db_id,)})  # web needs db: db first, not newest first
    fake.calls.clear()
    assert down.end() == []
    assert [ref for (ref,) in fake.called("start")] == [db_id, web_id]
