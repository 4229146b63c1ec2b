"""The Grafana dashboard and Prometheus rules in examples/: the queries they make and the
salvage metrics those name, so that tests can hold them to what salvage writes."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import List, Set

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "examples/grafana/salvage.json"
RULES = ROOT / "examples/prometheus/salvage.rules.yml"
RULES_TEST = ROOT / "examples/prometheus/salvage.rules.test.yml"
# Every metric salvage writes is salvage_tide_* or salvage_volume_*.
NAME = re.compile(r"\bsalvage_(?:tide|volume)_[a-z_]+\b")
# Grafana's template variables, for a query Prometheus can parse on its own.
VARIABLE = re.compile(r"\$\{?(?:instance|tide|volume)\}?")


def promtool() -> str:
    return shutil.which("promtool") or ""


def dashboard_queries() -> List[str]:
    """The PromQL of every panel's targets, with the template variables matching all."""
    found = []
    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        for target in panel.get("targets", []):
            found.append(VARIABLE.sub(".*", target["expr"]))
    return found


def dashboard_variable_queries() -> List[str]:
    templating = json.loads(DASHBOARD.read_text())["templating"]["list"]
    return [v["definition"] for v in templating if v["type"] == "query"]


def metric_names() -> Set[str]:
    """The salvage metrics the dashboard, the rules and the rules' tests name."""
    texts = dashboard_queries() + dashboard_variable_queries()
    texts += [RULES.read_text(), RULES_TEST.read_text()]
    return {name for text in texts for name in NAME.findall(text)}
