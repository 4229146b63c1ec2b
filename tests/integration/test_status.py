"""`status`, `history` and the metrics file after real runs: what they say matches what
the runs did and what Docker itself recorded."""

from __future__ import annotations

import json
import os
import time

from prometheus_client.parser import text_string_to_metric_families
from support.watch import container_events

DOWN = ("kill", "die", "stop", "pause")
UP = ("start", "unpause")


def _config(salvage, fail: str = "", extra: str = "") -> None:
    """The test's tide on a crane that takes a second; the volume `fail` fails."""
    script = f'sleep 1; [ "$SALVAGE_VOLUME_NAME" != "{fail}" ] || exit 4'
    salvage.use_script(script, grouping="individual", top=extra)


def _two_volumes(stack):
    made = []
    for name in ("good", "bad"):
        volume = stack.volume(name)
        container = stack.container(
            name, [volume], labels={f"salvage.tide.{stack.tide}": f"g:{volume}"}
        )
        made.append((volume, container))
    return made


def _downtime(seen: list, container: str, start: float, end: float) -> float:
    """From Docker's events: the container's first stop (or pause) to its last start."""
    mine = [(action, t) for name, action, t in seen if name == container and start <= t <= end]
    down = min(t for action, t in mine if action in DOWN)
    up = max(t for action, t in mine if action in UP)
    return up - down


def test_status_and_history_report_the_runs_and_dockers_downtime(stack, salvage):
    (good, good_c), (bad, bad_c) = _two_volumes(stack)
    with container_events(stack.host, [good_c, bad_c]) as seen:
        _config(salvage)
        first = time.time()
        salvage("run", check_code=0)
        _config(salvage, fail=bad)
        second = time.time()
        salvage("run", check_code=1)
        end = time.time()

    runs = json.loads(salvage("history", "--json", check_code=0).stdout)
    assert [r["result"] for r in runs] == ["failure", "success"]  # newest first
    assert [r["trigger"] for r in runs] == ["manual", "manual"]
    for run, (start, until) in zip(runs, [(second, end), (first, second)]):
        assert start <= run["started"] < run["ended"] <= until
        volumes = {v["volume"]: v for v in run["volumes"]}
        assert set(volumes) == {good, bad}
        for volume, container in ((good, good_c), (bad, bad_c)):
            docker_says = _downtime(seen, container, start, until)
            assert abs(volumes[volume]["downtime"] - docker_says) < 0.5, (volume, docker_says)
            assert volumes[volume]["crane"] == "script" and volumes[volume]["seconds"] >= 1
        assert abs(run["downtime"] - sum(v["downtime"] for v in run["volumes"])) < 1e-6
    failed = {v["volume"]: v for v in runs[0]["volumes"]}[bad]
    assert failed["ok"] is False and failed["exit_code"] == 4
    assert failed["error"] == 'crane "script" exited with 4'

    # One volume's history: only the runs that had it, only its lines.
    only = json.loads(salvage("history", "--volume", bad, "--json").stdout)
    assert [[v["volume"] for v in r["volumes"]] for r in only] == [[bad], [bad]]
    assert json.loads(salvage("history", "--tide", "other", "--json").stdout) == []

    done = salvage("status", "--json")
    assert done.returncode == 1  # the last run failed
    (tide,) = json.loads(done.stdout)
    assert tide["tide"] == stack.tide and tide["next_run"] is None  # no timer on this host
    assert tide["last_run"]["run_id"] == runs[0]["run_id"]
    assert tide["last_run"]["result"] == "failure"
    volumes = {v["volume"]: v for v in tide["volumes"]}
    ended = {(r["run_id"], v["volume"]): v["ended"] for r in runs for v in r["volumes"]}
    assert volumes[good]["last_success"] == ended[runs[0]["run_id"], good]
    assert volumes[bad]["last_success"] == ended[runs[1]["run_id"], bad]  # the first run's
    assert volumes[bad]["last_ok"] is False and volumes[bad]["last_error"].endswith("with 4")
    assert not volumes[good]["overdue"] and not volumes[bad]["overdue"]  # daily, by default
    assert 0 <= volumes[bad]["age"] < time.time() - first

    text = salvage("status").stdout
    assert f"tide {stack.tide} (every 1 d)" in text
    assert "last run: " in text and "failure, 1 of 2 volumes backed up" in text
    assert "next run: not scheduled" in text
    (bad_line,) = [line for line in text.splitlines() if line.strip().startswith(bad)]
    assert 'failed: crane "script" exited with 4' in bad_line and "\033[" not in bad_line


def test_metrics_file_parses_and_carries_the_last_runs(stack, salvage):
    (good, _), (bad, _) = _two_volumes(stack)
    textfile = salvage.tmp / "textfile"
    textfile.mkdir()
    extra = f'metrics_directory = "{textfile}"'
    _config(salvage, extra=extra)
    salvage("run", check_code=0)
    _config(salvage, fail=bad, extra=extra)
    salvage("run", check_code=1)

    runs = json.loads(salvage("history", "--json").stdout)
    prom = textfile / "salvage.prom"
    assert os.listdir(textfile) == ["salvage.prom"]  # no temporary file left behind
    assert prom.stat().st_mode & 0o777 == 0o644
    families = list(text_string_to_metric_families(prom.read_text()))
    value = {}
    for family in families:
        assert (
            family.name.startswith("salvage_") and family.type == "gauge" and family.documentation
        )
        for sample in family.samples:
            value[sample.name, sample.labels.get("volume")] = sample.value
            assert sample.labels["tide"] == stack.tide

    last, before = runs
    vol = {v["volume"]: v for v in last["volumes"]}
    earlier = {v["volume"]: v for v in before["volumes"]}
    assert value["salvage_tide_last_run_success", None] == 0
    assert value["salvage_tide_last_run_failed_volumes", None] == 1
    assert value["salvage_tide_last_run_timestamp_seconds", None] == last["ended"]
    assert value["salvage_tide_last_run_duration_seconds", None] == last["seconds"]
    assert value["salvage_tide_last_run_downtime_seconds", None] == last["downtime"]
    assert value["salvage_tide_last_success_timestamp_seconds", None] == before["ended"]
    assert value["salvage_volume_last_success", good] == 1
    assert value["salvage_volume_last_success", bad] == 0
    assert value["salvage_volume_last_success_timestamp_seconds", good] == vol[good]["ended"]
    assert value["salvage_volume_last_success_timestamp_seconds", bad] == earlier[bad]["ended"]
    for volume in (good, bad):
        assert value["salvage_volume_last_duration_seconds", volume] == vol[volume]["seconds"]
        assert value["salvage_volume_last_downtime_seconds", volume] == vol[volume]["downtime"]
