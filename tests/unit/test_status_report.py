"""`salvage status` on a recorded history: each volume's age against its tide's schedule,
the next run, and what the text says; a tide's interval, from systemd's own calendar."""

import shutil
from types import SimpleNamespace

import pytest

from salvage.actions import status
from salvage.config.schema import Tide
from salvage.core.results import TideResult, VolumeResult
from salvage.report.history import Recorder
from salvage.systemd import schedule
from salvage.terminal import Paint

T0 = 1_790_000_000.0
HOUR = 3600.0


def _config(tmp_path, **tide):
    return SimpleNamespace(
        state_directory=str(tmp_path), machine="box", tides={"daily": Tide("daily", **tide)}
    )


def _record(config, run_id, started, *volumes):
    recorder = Recorder(config)
    result = TideResult("daily", run_id=run_id, started=started)
    run = SimpleNamespace(tide=Tide("daily"), run_id=run_id, result=result)
    recorder.tide_started(run, None)
    result.volumes = list(volumes)
    result.ended = started + 10
    recorder.tide_done(run, result)


def _volume(name, ok, started):
    return VolumeResult(
        name,
        ok,
        "" if ok else "disk full",
        started=started,
        seconds=5.0,
        group=name,
        crane="tar",
        exit_code=0 if ok else 1,
    )


@pytest.fixture
def history(tmp_path):
    """Two hourly runs: `db` backed up in both, `web` only in the first."""
    config = _config(tmp_path, schedule="hourly")
    _record(config, "r1", T0, _volume("db", True, T0), _volume("web", True, T0))
    _record(
        config, "r2", T0 + HOUR, _volume("db", True, T0 + HOUR), _volume("web", False, T0 + HOUR)
    )
    return config


def test_a_volume_is_overdue_once_older_than_its_interval_and_a_tenth(history):
    last_db = T0 + HOUR + 5  # when its crane finished
    at = {
        v["volume"]: v
        for v in status.report(history, now=last_db + 1.05 * HOUR, next_run=lambda t: None)[0][
            "volumes"
        ]
    }
    assert at["db"]["overdue"] is False and at["db"]["age"] == pytest.approx(1.05 * HOUR)
    assert at["web"]["overdue"] is True  # its last success is the first run's, 2 h ago
    assert at["web"]["last_success"] == T0 + 5 and at["web"]["last_ok"] is False
    assert at["web"]["last_error"] == "disk full"
    later = status.report(history, now=last_db + 1.11 * HOUR, next_run=lambda t: None)
    assert [v["overdue"] for v in later[0]["volumes"]] == [True, True]


def test_a_randomized_delay_extends_the_allowance(history):
    history.tides["daily"] = Tide("daily", schedule="hourly", randomized_delay=HOUR)
    (tide,) = status.report(history, now=T0 + HOUR + 5 + 2 * HOUR, next_run=lambda t: None)
    assert tide["overdue_after"] == pytest.approx(2.1 * HOUR)
    assert {v["volume"]: v["overdue"] for v in tide["volumes"]} == {"db": False, "web": True}


def test_healthy_only_when_every_last_run_succeeded_and_nothing_is_overdue(history, tmp_path):
    now = T0 + HOUR + 60
    assert not status.healthy(status.report(history, now=now, next_run=lambda t: None))
    _record(history, "r3", T0 + HOUR + 30, _volume("db", True, now), _volume("web", True, now))
    assert status.healthy(status.report(history, now=now + 60, next_run=lambda t: None))
    never = _config(tmp_path / "empty")
    assert not status.healthy(status.report(never, next_run=lambda t: None))


def test_the_text_names_the_last_run_the_next_and_each_volume(history):
    now = T0 + HOUR + 5 + 2 * HOUR
    tides = status.report(history, now=now, next_run=lambda tide: now + 1800)
    text = status.render(tides, Paint(None), now=now).splitlines()
    assert text[0] == "tide daily (every 1 h)"
    assert text[1].startswith("  last run: ") and text[1].endswith(
        "(2 h ago): failure, 1 of 2 volumes backed up"
    )
    assert text[2].startswith("  next run: ") and text[2].endswith(" (in 30 min)")
    assert text[3].split() == [
        "volume",
        "last",
        "success",
        "age",
        "size",
        "verified",
        "last",
        "backup",
    ]
    assert text[4].split()[0] == "db"
    assert text[4].split()[3:] == [
        "2",
        "h",
        "-",
        "-",
        "ok",
        "OVERDUE",
        "(expected",
        "every",
        "1",
        "h)",
    ]
    assert text[5].split()[0] == "web" and "failed: disk full" in text[5]
    unscheduled = status.render(
        status.report(history, now=now, next_run=lambda t: None), Paint(None), now
    )
    assert "  next run: not scheduled" in unscheduled


# --- intervals and timers -----------------------------------------------------------------


@pytest.mark.parametrize(
    "expression, seconds",
    [
        (None, 86400),
        ("daily", 86400),
        ("hourly", 3600),
        ("Weekly", 7 * 86400),
        ("monthly", 31 * 86400),
    ],
)
def test_shorthand_schedules(expression, seconds):
    assert schedule.interval(expression) == seconds


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="needs systemd-analyze")
def test_other_schedules_take_systemds_longest_gap():
    assert schedule.interval("*-*-* 03:00") == 86400
    assert schedule.interval("*-*-* 00/6:00") == 6 * HOUR
    assert schedule.interval("Mon,Fri 03:00") == 4 * 86400  # Mon -> Fri, the longer gap
    assert schedule.interval("not a calendar") == schedule.DEFAULT_INTERVAL


def test_a_timers_next_elapse_as_systemctl_prints_it_in_utc():
    assert schedule._utc("Fri 2026-11-27 03:00:00 UTC\n") == 1795748400.0
    assert schedule._utc("") is None and schedule._utc("n/a") is None
