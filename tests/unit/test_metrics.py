"""The textfile collector's file: Prometheus' own parser reads it back, with the values of
the recorded runs; it is replaced whole, never half written."""

import os
from types import SimpleNamespace

import pytest
from prometheus_client.parser import text_string_to_metric_families

from salvage.config.schema import Tide
from salvage.core.results import TideResult, VolumeResult
from salvage.report import metrics
from salvage.report.history import History, Recorder

T0 = 1_790_000_000.0


def _record(config, tide, run_id, started, *volumes):
    recorder = Recorder(config)
    result = TideResult(tide, run_id=run_id, started=started, downtime=1.5)
    run = SimpleNamespace(tide=Tide(tide), run_id=run_id, result=result)
    recorder.tide_started(run, None)
    result.volumes, result.ended = list(volumes), started + 20
    recorder.tide_done(run, result)


def _volume(name, ok, started, size=None):
    return VolumeResult(
        name,
        ok,
        "" if ok else "boom",
        started=started,
        seconds=4.5,
        downtime=1.5,
        group=name,
        crane="tar",
        size=size,
    )


def _parse(text):
    found = {}
    for family in text_string_to_metric_families(text):
        assert family.type == "gauge" and family.documentation
        for sample in family.samples:
            found[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return found


def test_the_file_carries_the_last_runs_and_parses(tmp_path):
    odd = 'odd "tide"\\ with\nnewline'  # TOML keys may hold anything: labels are escaped
    tides = {"daily": Tide("daily"), odd: Tide(odd), "unused": Tide("unused")}
    config = SimpleNamespace(
        state_directory=str(tmp_path), machine="box", tides=tides, metrics_directory=str(tmp_path)
    )
    _record(
        config,
        "daily",
        "r1",
        T0,
        _volume("db", True, T0, size=2048),
        _volume("web", True, T0, size=1024),
    )
    _record(
        config,
        "daily",
        "r2",
        T0 + 100,
        _volume("db", True, T0 + 100),
        _volume("web", False, T0 + 100),
    )
    _record(config, odd, "r3", T0 + 200, _volume("x", True, T0 + 200))

    metrics.Metrics(config).tide_done(None, None)
    found = _parse((tmp_path / "salvage.prom").read_text())

    daily, db, web = (
        (("tide", "daily"),),
        (("tide", "daily"), ("volume", "db")),
        (("tide", "daily"), ("volume", "web")),
    )
    assert found["salvage_tide_last_run_timestamp_seconds", daily] == T0 + 120
    assert found["salvage_tide_last_run_success", daily] == 0
    assert found["salvage_tide_last_run_duration_seconds", daily] == 20
    assert found["salvage_tide_last_run_downtime_seconds", daily] == 1.5
    assert found["salvage_tide_last_run_failed_volumes", daily] == 1
    assert found["salvage_tide_last_success_timestamp_seconds", daily] == T0 + 20
    assert (
        found["salvage_volume_last_success", db] == 1
        and found["salvage_volume_last_success", web] == 0
    )
    assert found["salvage_volume_last_success_timestamp_seconds", db] == T0 + 104.5
    assert found["salvage_volume_last_success_timestamp_seconds", web] == T0 + 4.5
    assert found["salvage_volume_last_duration_seconds", web] == 4.5
    assert found["salvage_volume_last_downtime_seconds", web] == 1.5
    # The size of the last good backup, when the crane said it: db's last one did not.
    assert found["salvage_volume_last_size_bytes", web] == 1024
    assert ("salvage_volume_last_size_bytes", db) not in found
    assert found["salvage_tide_last_run_success", (("tide", odd),)] == 1
    assert not [key for key in found if ("tide", "unused") in key[1]]  # never ran: no figures


def test_the_file_is_replaced_whole(tmp_path):
    (tmp_path / "salvage.prom").write_text("old\n")
    path = metrics.write(str(tmp_path), "# HELP x y\n# TYPE x gauge\nx 1\n")
    assert path == str(tmp_path / "salvage.prom")
    assert os.listdir(tmp_path) == ["salvage.prom"]
    assert (tmp_path / "salvage.prom").read_text() == "# HELP x y\n# TYPE x gauge\nx 1\n"
    assert os.stat(path).st_mode & 0o777 == 0o644


def test_a_missing_directory_is_said_plainly(tmp_path):
    with pytest.raises(OSError, match=f"^metrics_directory {tmp_path}/nope is not a directory$"):
        metrics.write(str(tmp_path / "nope"), "")


def test_nothing_recorded_makes_an_empty_file(tmp_path):
    assert metrics.render(metrics.samples(History(str(tmp_path)), ["daily"])) == "\n"
