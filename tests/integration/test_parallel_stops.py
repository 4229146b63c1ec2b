"""A group's containers go down and come back at once, except where Compose's depends_on
orders them: Compose v2's label, or the compose files of docker-compose 1.29 (Debian 12's,
which records no depends_on label). What a user checks: Docker's own event log."""

from __future__ import annotations

import time

import pytest
from support.harness import BUSYBOX, events

pytestmark = pytest.mark.boundary  # docs/testing.md: run again on the distribution's libraries

# sh as the container's main process (under tini) takes 2 s to stop after SIGTERM.
SLOW_STOP = "trap 'sleep 2; exit 0' TERM; sleep 3600 & wait"


def _first(seen, name, action):
    return next(t for n, a, t in seen if n == name and a == action)


def _overlap(seen, names) -> bool:
    """Every container was sent its stop signal before any of them died."""
    return max(_first(seen, n, "kill") for n in names) < min(_first(seen, n, "die") for n in names)


def _one_group(stack, names, labels):
    vol = stack.volume("shared")
    made = []
    for name in names:
        tags = dict(labels.get(name, {}))
        if not made:
            tags[f"salvage.tide.{stack.tide}"] = f"g:{vol}"
        made.append(stack.container(name, [vol], labels=tags, command=SLOW_STOP))
    return made


def test_unrelated_containers_stop_and_start_at_once(stack, salvage, api):
    a, b, c = _one_group(stack, ["a", "b", "c"], {})
    salvage.use_tar()
    before = stack.states()
    since = time.time()
    salvage("run", check_code=0)
    seen = events(api, since)
    assert _overlap(seen, [a, b, c])
    assert stack.states() == before


def test_v2_depends_on_labels_order_parallel_stops_and_starts(stack, salvage, api):
    project = {"com.docker.compose.project": f"{stack.prefix}v2"}
    dependent = {"com.docker.compose.depends_on": "db:service_started:false"}
    labels = {
        "db": {**project, "com.docker.compose.service": "db", "com.docker.compose.depends_on": ""},
        "web": {**project, "com.docker.compose.service": "web", **dependent},
        "worker": {**project, "com.docker.compose.service": "worker", **dependent},
    }
    # Name order alone would stop db first and start it last.
    db, web, worker = _one_group(stack, ["db", "web", "worker"], labels)
    salvage.use_tar()
    plan = salvage.plan()[0]["groups"][0]
    assert {s["container"]: s["depends_on"] for s in plan["containers"]} == {
        web: [db],
        worker: [db],
        db: [],
    }
    since = time.time()
    salvage("run", check_code=0)
    seen = events(api, since)
    assert _overlap(seen, [web, worker])  # the two dependents at once
    assert _first(seen, db, "kill") > max(_first(seen, web, "die"), _first(seen, worker, "die"))
    assert _first(seen, db, "start") < min(
        _first(seen, web, "start"), _first(seen, worker, "start")
    )


COMPOSE_1 = f"""
version: "2.4"
x-slow: &slow
  image: {BUSYBOX}
  init: true
  network_mode: none
  command: ["sh", "-c", "{SLOW_STOP}"]
  volumes: [data:/data]
services:
  db:
    <<: *slow
    labels:
      salvage.tide.TIDE: data
  worker:
    <<: *slow
    depends_on: [db]
  web:
    <<: *slow
    depends_on:
      db:
        condition: service_started
volumes:
  data:
"""


def test_compose_1_files_order_parallel_stops_and_starts(stack, salvage, api):
    project = stack.compose("c1", COMPOSE_1.replace("TIDE", stack.tide))
    db, web, worker = (stack.id_of(project, s) for s in ("db", "web", "worker"))
    labels = api.inspect_container(db)["Config"]["Labels"]
    assert "com.docker.compose.depends_on" not in labels  # docker-compose 1.29 records none
    salvage.use_tar()
    before = stack.states()
    since = time.time()
    salvage("run", check_code=0)
    seen = events(api, since)
    # Before: name order started worker (and web) before the db they depend on.
    assert _first(seen, db, "start") < min(
        _first(seen, web, "start"), _first(seen, worker, "start")
    )
    assert _first(seen, db, "kill") > max(_first(seen, web, "die"), _first(seen, worker, "die"))
    assert _overlap(seen, [web, worker])
    assert stack.states() == before
    plan = salvage("plan", check_code=0).stdout
    assert f"{worker} [running]: stop\n      after: {db} (depends_on)" in plan
    assert "order unknown" not in plan


def test_unreadable_compose_files_one_line_in_plan_and_one_at_a_time(stack, salvage, api):
    project = stack.compose("c1", COMPOSE_1.replace("TIDE", stack.tide))
    names = [stack.id_of(project, s) for s in ("db", "web", "worker")]
    compose_file = stack.tmp / project / "docker-compose.yml"
    compose_file.write_text("services: [not, a: mapping\n")
    salvage.use_tar()
    plan = salvage("plan", check_code=0).stdout
    line = (
        f'    order unknown (compose project "{project}": {compose_file}: not YAML (line 2)):'
        " one container at a time"
    )
    assert line in plan.splitlines(), plan
    compose_file.unlink()
    assert f"cannot read {compose_file}: No such file or directory" in salvage("plan").stdout
    before = stack.states()
    since = time.time()
    done = salvage("run", check_code=0)
    assert "Traceback" not in done.stderr
    seen = events(api, since)
    # One at a time, in the plan's order (by name): each is down before the next is touched.
    stops = sorted(names, key=lambda n: _first(seen, n, "kill"))
    assert stops == sorted(names)
    for first, then in zip(stops, stops[1:]):
        assert _first(seen, first, "die") < _first(seen, then, "kill")
    assert stack.states() == before
