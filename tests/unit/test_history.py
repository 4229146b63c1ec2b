"""The run history in SQLite: what the Recorder writes as a run goes, what the readers get
back, and schema migrations."""

import logging
import sqlite3
from types import SimpleNamespace

import pytest

from salvage.config.schema import Tide
from salvage.core.model import Problem
from salvage.core.results import TideResult, VolumeResult
from salvage.report import history
from salvage.report.history import History, HistoryError, Recorder

T0 = 1_790_000_000.0


def _run(tide="daily", run_id="r1", started=T0):
    """What observers get as `run`: only the fields the Recorder reads."""
    result = TideResult(tide, run_id=run_id, trigger="timer", started=started)
    return SimpleNamespace(tide=Tide(tide), run_id=run_id, result=result)


def _volume(name, ok=True, started=T0 + 1, **kw):
    kw.setdefault("message", "" if ok else 'crane "tar" exited with 3')
    return VolumeResult(
        name,
        ok,
        group="g",
        crane="tar",
        started=started,
        seconds=2.0,
        downtime=3.0,
        exit_code=0 if ok else 3,
        **kw,
    )


def _record(recorder, run, volumes, told=None, ended=T0 + 10, **result):
    """A whole run through the Recorder's hooks; `told`: the volumes the run announced
    one by one (the others failed before their group ran)."""
    recorder.tide_started(run, None)
    for volume in volumes if told is None else told:
        recorder.volume_done(run, volume)
    run.result.volumes = list(volumes)
    run.result.ended = ended
    for key, value in result.items():
        setattr(run.result, key, value)
    recorder.tide_done(run, run.result)


@pytest.fixture
def recorder(tmp_path):
    return Recorder(SimpleNamespace(state_directory=str(tmp_path / "state"), machine="box"))


def test_a_run_is_recorded_as_it_goes(recorder):
    run = _run()
    recorder.tide_started(run, None)
    (running,) = recorder.history.runs()
    assert running["result"] == "running" and running["ended"] is None
    assert running["machine"] == "box" and running["trigger"] == "timer"

    good = _volume("db", size=4096)
    recorder.volume_done(run, good)
    assert [v["volume"] for v in recorder.history.runs()[0]["volumes"]] == ["db"]

    never = VolumeResult("uploads", False, "not backed up: interrupted (SIGTERM)", group="g")
    run.result.volumes = [good, never]  # `never` failed before its group ran: no volume_done
    run.result.ended, run.result.interrupted = T0 + 10, "SIGTERM"
    run.result.errors.append(Problem('container "app"', "could not be restored: gone"))
    recorder.tide_done(run, run.result)

    (done,) = recorder.history.runs()
    assert done["result"] == "failure" and done["exit_code"] == 1
    assert done["seconds"] == 10 and done["interrupted"] == "SIGTERM"
    assert done["problems"] == ['container "app": could not be restored: gone']
    volumes = {v["volume"]: v for v in done["volumes"]}
    assert volumes["db"] == {
        "run_id": "r1",
        "tide": "daily",
        "volume": "db",
        "group": "g",
        "crane": "tar",
        "ok": True,
        "started": T0 + 1,
        "ended": T0 + 3,
        "seconds": 2.0,
        "downtime": 3.0,
        "exit_code": 0,
        "error": "",
        "size": 4096,
        "bytes_read": None,
        "files": None,
        "snapshot": None,
        "shrunk": None,
    }
    assert volumes["uploads"]["ok"] is False and volumes["uploads"]["started"] is None
    assert volumes["uploads"]["error"] == "not backed up: interrupted (SIGTERM)"


def test_a_run_that_died_is_marked_unfinished_when_its_tide_runs_again(recorder):
    recorder.tide_started(_run(run_id="dead"), None)  # and then the process was killed
    _record(recorder, _run(run_id="next", started=T0 + 100), [_volume("db")])
    assert [(r["run_id"], r["result"]) for r in recorder.history.runs()] == [
        ("next", "success"),
        ("dead", "unfinished"),
    ]


def test_runs_filter_by_tide_and_volume_newest_first(recorder):
    _record(recorder, _run("daily", "d1", T0), [_volume("db"), _volume("web")])
    _record(recorder, _run("weekly", "w1", T0 + 50), [_volume("db")])
    _record(recorder, _run("daily", "d2", T0 + 100), [_volume("web")])
    runs = recorder.history
    assert [r["run_id"] for r in runs.runs()] == ["d2", "w1", "d1"]
    assert [r["run_id"] for r in runs.runs(tides=["daily"])] == ["d2", "d1"]
    only_db = runs.runs(volumes=["db"])
    assert [(r["run_id"], [v["volume"] for v in r["volumes"]]) for r in only_db] == [
        ("w1", ["db"]),
        ("d1", ["db"]),
    ]
    assert [r["run_id"] for r in runs.runs(limit=1)] == ["d2"]


def test_volumes_are_those_of_the_last_finished_run_with_their_last_success(recorder):
    _record(
        recorder, _run(run_id="r1", started=T0), [_volume("db", started=T0 + 1), _volume("old")]
    )
    _record(
        recorder, _run(run_id="r2", started=T0 + 100), [_volume("db", ok=False, started=T0 + 101)]
    )
    recorder.tide_started(_run(run_id="r3", started=T0 + 200), None)  # still running
    (db,) = recorder.history.volumes("daily")  # "old" is no longer in the tide
    assert db["volume"] == "db"
    assert db["last"]["run_id"] == "r2" and db["last"]["ok"] is False
    assert db["last_success"]["run_id"] == "r1" and db["last_success"]["ended"] == T0 + 3
    assert recorder.history.last_run("daily")["run_id"] == "r3"
    assert recorder.history.last_run("daily", finished=True)["run_id"] == "r2"
    assert recorder.history.last_success("daily") == T0 + 10


def test_reading_before_any_run_finds_nothing_and_creates_nothing(tmp_path):
    empty = History(str(tmp_path / "state"))
    assert empty.runs() == [] and empty.volumes("daily") == [] and empty.last_run("daily") is None
    assert not (tmp_path / "state").exists()


def test_a_new_database_has_the_latest_schema(recorder):
    _record(recorder, _run(), [_volume("db")])
    with sqlite3.connect(recorder.history.path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(history.MIGRATIONS)


def test_migrations_bring_an_older_database_up_to_date_keeping_its_runs(recorder, monkeypatch):
    _record(recorder, _run(), [_volume("db")])  # written at the current schema
    later = (("ALTER TABLE runs ADD COLUMN host_load REAL NOT NULL DEFAULT 0",),)
    monkeypatch.setattr(history, "MIGRATIONS", history.MIGRATIONS + later)
    (run,) = recorder.history.runs()
    assert run["run_id"] == "r1" and run["host_load"] == 0
    with sqlite3.connect(recorder.history.path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(history.MIGRATIONS)


def test_a_schema_1_database_gains_the_cranes_reports_keeping_its_sizes(recorder, monkeypatch):
    monkeypatch.setattr(history, "MIGRATIONS", history.MIGRATIONS[:1])
    with recorder.history._connect(write=True) as conn:  # as salvage 0.1 wrote it
        conn.execute(
            "INSERT INTO runs (run_id, tide, machine, trigger, started, result)"
            " VALUES ('old', 'daily', 'box', 'manual', 1, 'success')"
        )
        conn.execute(
            "INSERT INTO volumes (run_id, tide, volume, grp, crane, ok, ended, seconds,"
            " downtime, size) VALUES ('old', 'daily', 'db', 'g', 'tar', 1, 2, 1, 0, 42)"
        )
    monkeypatch.undo()
    (run,) = recorder.history.runs()
    (db,) = run["volumes"]
    assert db["size"] == 42 and db["bytes_read"] is None and db["snapshot"] is None


def test_a_database_from_a_newer_salvage_is_one_clear_line(recorder):
    _record(recorder, _run(), [_volume("db")])
    with sqlite3.connect(recorder.history.path) as conn:
        conn.execute("PRAGMA user_version = 7")
    with pytest.raises(HistoryError) as error:
        recorder.history.runs()
    assert str(error.value) == (
        f"{recorder.history.path}: written by a newer salvage (schema 7; this one knows"
        f" {len(history.MIGRATIONS)})"
    )


def test_a_history_that_cannot_be_written_is_one_warning_and_the_run_goes_on(tmp_path, caplog):
    (tmp_path / "state").write_text("a file, not a directory")
    recorder = Recorder(SimpleNamespace(state_directory=str(tmp_path / "state"), machine="box"))
    with caplog.at_level(logging.WARNING, logger="salvage"):
        _record(recorder, _run(), [_volume("db"), _volume("web")])
    assert [r.getMessage() for r in caplog.records] == [
        f"history: this run is not recorded: {tmp_path}/state/history.sqlite:"
        f" [Errno 17] File exists: '{tmp_path}/state'"
    ]
