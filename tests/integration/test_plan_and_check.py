"""`salvage plan` says what `salvage run` then does; `check` and `run` on bad input."""

from __future__ import annotations

import collections
import time

import pytest
from support.harness import events

MODES = {
    # grouping mode -> the expected groups, as sets of volume keys (see the stack below)
    "individual": [{"v1"}, {"v2"}, {"v3"}, {"g1"}],
    "smart": [{"v1", "v2", "g1"}, {"v3"}],
    "project": [{"v1", "v2", "v3", "g1"}],
}


@pytest.mark.parametrize("mode", list(MODES))
def test_plan_matches_what_run_does(stack, salvage, api, mode):
    g1 = stack.volume("g1")
    project = stack.compose(
        "p",
        f"""
        version: "2.4"
        x-base: &base
          image: salvage-test/busybox
          init: true
          network_mode: none
          command: sleep 3600
        services:
          a:
            <<: *base
            volumes: [v1:/v1, v2:/v2]
            labels:
              salvage.tide.{stack.tide}: v1,v2,v3
          b:
            <<: *base
            volumes: [v2:/v2]
          c:
            <<: *base
          d:
            <<: *base
            volumes: [v3:/v3]
        volumes:
          v1:
          v2:
          v3:
        """,
    )
    real = {f"v{i}": f"{project}_v{i}" for i in (1, 2, 3)}
    real["g1"] = g1
    e = stack.container("e", [g1, real["v1"]], labels={f"salvage.tide.{stack.tide}": f"g:{g1}"})
    salvage.use_tar(mode)

    (plan,) = salvage.plan("--tide", stack.tide)
    by_real = {v: k for k, v in real.items()}
    assert sorted(sorted(by_real[v] for v in g["volumes"]) for g in plan["groups"]) == sorted(
        sorted(group) for group in MODES[mode]
    )
    expected_stops = collections.Counter(
        step["container"]
        for group in plan["groups"]
        for step in group["containers"]
        if step["action"] == "stop"
    )
    if mode == "project":  # service c uses no volume, and goes down with its project
        assert expected_stops[stack.id_of(project, "c")] == 1
    else:
        assert stack.id_of(project, "c") not in expected_stops
    assert expected_stops[e] == (2 if mode == "individual" else 1)

    since = time.time()
    done = salvage("run", "--tide", stack.tide)
    assert done.returncode == 0, done.stderr
    stops = collections.Counter(
        name
        for name, action, _ in events(api, since)
        if action == "die" and name.startswith(stack.prefix)
    )
    assert stops == expected_stops
    for number, group in enumerate(plan["groups"], 1):
        header = f"group {number}/{len(plan['groups'])} {group['name']}: volumes "
        assert header + ", ".join(group["volumes"]) in done.stderr
    assert sorted(salvage.archives()) == sorted(real.values())


def test_malformed_config_is_reported_per_key_and_touches_nothing(stack, salvage, api):
    vol = stack.volume("data")
    stack.container("app", [vol], labels={f"salvage.tide.{stack.tide}": f"g:{vol}"})
    config = salvage.write_config(
        f"""
        [tides.{stack.tide}]
        crane = "s3"
        grouping = "sometimes"
        max_concurrent = 0
        colour = "blue"
        [cranes.local]
        pull = "maybe"
        """
    )
    before = stack.states()
    since = time.time()
    for command in ("run", "plan", "check"):
        done = salvage(command)
        assert done.returncode == 2
        lines = done.stderr.strip().splitlines()
        t = f"{config}: tides.{stack.tide}"
        assert sorted(lines) == sorted(
            [
                f'error: {t}.crane: no crane named "s3"',
                f"error: {t}.grouping: 'sometimes' is not one of individual, smart, project",
                f"error: {t}.max_concurrent: must be a whole number of at least 1, not 0",
                f"error: {t}.colour: unknown key",
                f"error: {config}: cranes.local.pull: 'maybe' is not one of always, missing, never",
                f"error: {config}: cranes.local.image: is required",
            ]
        ), done.stderr
    assert stack.states() == before
    assert not [e for e in events(api, since) if e[0].startswith(stack.prefix)]


def test_malformed_labels_fail_their_volumes_and_the_rest_runs(stack, salvage, api):
    good, odd = stack.volume("good"), stack.volume("odd")
    t = f"salvage.tide.{stack.tide}"
    ok = stack.container("ok", [good], labels={t: f"g:{good}"})
    bad = stack.container(
        "bad",
        [odd],
        labels={
            t: f"g:{odd},g:{stack.prefix}-missing,,no/slash",
            "salvage.action": "explode",
            "salvage.command.exitcode": "3-1",
        },
    )
    salvage.use_tar()
    expected = [
        f'error: container "{bad}": label {t}: no volume named "{stack.prefix}-missing"',
        f'error: container "{bad}": label {t}: "" is not a volume name',
        f'error: container "{bad}": label {t}: "no/slash" is not a volume name',
        f'error: container "{bad}": label salvage.action: "explode" is not one of stop, pause,'
        " ignore",
        f'error: container "{bad}": label salvage.command.exitcode: "3-1" is not a range of'
        " exit codes (0-255, low-high)",
    ]
    done = salvage("check")
    assert done.returncode == 2
    assert set(expected) <= set(done.stderr.splitlines()), done.stderr

    before = stack.states()
    since = time.time()
    done = salvage("run")
    assert done.returncode == 2, done.stderr
    assert set(expected) <= set(done.stderr.splitlines()), done.stderr
    assert stack.states() == before
    seen = {(n, a) for n, a, _ in events(api, since)}
    assert (ok, "die") in seen and not [e for e in seen if e[0] == bad]
    assert sorted(salvage.archives()) == [good]


def test_a_crane_mounting_a_volume_is_no_consumer_to_stop(stack, salvage, api):
    vol = stack.volume("data")
    app = stack.container("app", [vol], labels={f"salvage.tide.{stack.tide}": f"g:{vol}"})
    # Another salvage's crane at work on the same volume (another state directory).
    crane = stack.container(
        "crane", [vol], labels={"salvage.crane": "tar", "salvage.instance": "/elsewhere"}
    )
    salvage.use_tar()
    (plan,) = salvage.plan("--tide", stack.tide)
    assert [c["container"] for g in plan["groups"] for c in g["containers"]] == [app]
    assert salvage("check").returncode == 0
    salvage("run", check_code=0)
    assert stack.state(crane) == "running"
