"""examples/prometheus (alert rules and their promtool tests) and examples/grafana (a
dashboard): promtool accepts the rules and their tests pass, every dashboard query parses,
and every metric they name is one salvage writes (tests/integration/test_metrics_examples.py
holds them to a .prom file of a real run)."""

from __future__ import annotations

import json
import subprocess

import pytest
from support import prom_examples as ex

from salvage.report.metrics import METRICS

needs_promtool = pytest.mark.skipif(
    not ex.promtool(),
    reason="promtool is not installed (Debian: apt-get install prometheus; make deps installs it)",
)


def _promtool(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [ex.promtool(), *args], capture_output=True, text=True, timeout=120, cwd=cwd
    )


@needs_promtool
def test_promtool_accepts_the_rules():
    done = _promtool("check", "rules", str(ex.RULES))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 5 rules found" in done.stdout


@needs_promtool
def test_the_rules_pass_their_promtool_tests():
    done = _promtool("test", "rules", ex.RULES_TEST.name, cwd=ex.RULES_TEST.parent)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


@needs_promtool
def test_every_dashboard_query_parses(tmp_path):
    """promtool parses PromQL in rules only: each panel's query as a recording rule."""
    queries = ex.dashboard_queries()
    assert len(queries) >= 10
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"salvage_dashboard_query_{n}", "expr": q}
                    for n, q in enumerate(queries)
                ],
            }
        ]
    }
    path = tmp_path / "dashboard.rules.json"  # JSON is YAML
    path.write_text(json.dumps(rules))
    done = _promtool("check", "rules", str(path))
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_metric_named_is_one_salvage_writes():
    named = ex.metric_names()
    assert named - set(METRICS) == set()
    # What the dashboard shows covers success age, downtime, sizes, failures, verification.
    shown = {
        "salvage_volume_last_success_timestamp_seconds",
        "salvage_volume_last_downtime_seconds",
        "salvage_volume_last_size_bytes",
        "salvage_tide_last_run_failed_volumes",
        "salvage_volume_last_verify_success",
    }
    assert shown <= named


def test_the_dashboard_asks_for_its_data_source():
    """Imported anywhere: every panel and query uses the ${datasource} variable."""
    dashboard = json.loads(ex.DASHBOARD.read_text())
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["query"] == "prometheus"
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
