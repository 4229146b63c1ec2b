"""Arbitrary labels never crash planning: every input gives a plan, or one-line problems."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from salvage.config.validate import validate
from salvage.core.model import Container, Host, Volume
from salvage.core.planning import check_host, plan_tide

KEYS = st.sampled_from(
    [
        "salvage.tide.t",
        "salvage.tide.",
        "salvage.tide.other",
        "salvage.action",
        "salvage.command.pre",
        "salvage.command.post",
        "salvage.command.exitcode",
        "salvage.user",
        "salvage.typo",
        "com.docker.compose.project",
        "com.docker.compose.service",
        "com.docker.compose.depends_on",
    ]
)
VALUES = st.one_of(
    st.text(max_size=30),
    st.sampled_from(
        [
            "stop",
            "pause",
            "ignore",
            "g:v0",
            "v1",
            "v0,v1",
            "g:",
            ",",
            "1,3-5",
            "5-3",
            "ignore",
            "a:b:c,",
            "db:service_started:false",
        ]
    ),
)
CONTAINERS = st.lists(
    st.tuples(
        st.dictionaries(KEYS, VALUES, max_size=6),
        st.lists(st.sampled_from(["v0", "v1", "p_v1", "missing"]), max_size=3),
        st.sampled_from(["running", "paused", "exited", "created", "restarting"]),
    ),
    max_size=6,
)
CONFIG, _ = validate({"tides": {"t": {"grouping": "project"}, "other": {}}}, "s.toml")


def _host(specs) -> Host:
    volumes = {
        "v0": Volume("v0"),
        "v1": Volume("v1"),
        "p_v1": Volume(
            "p_v1", labels={"com.docker.compose.project": "p", "com.docker.compose.volume": "v1"}
        ),
    }
    containers = tuple(
        Container(f"id{i}", f"c{i}", state, labels, tuple(v for v in mounts if v in volumes))
        for i, (labels, mounts, state) in enumerate(specs)
    )
    return Host(containers, volumes)


@settings(max_examples=300, deadline=None)
@given(CONTAINERS)
def test_any_labels_give_a_plan_or_one_line_problems(specs):
    host = _host(specs)
    for tide in ("t", "other"):
        plan = plan_tide(host, CONFIG, tide)
        json.dumps(plan.as_dict())
        problems = list(plan.problems) + [p for g in plan.groups for p in g.problems]
        assert all("\n" not in str(p) and str(p).startswith('container "c') for p in problems)
        grouped = [v for g in plan.groups for v in g.volumes]
        assert len(grouped) == len(set(grouped))  # every volume in one group at most
    for problem in check_host(host, CONFIG):
        assert "\n" not in str(problem)
