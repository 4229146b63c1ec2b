"""Which containers wait for which (salvage.core.ordering), the compose files of docker-compose
1.x projects (salvage.engine.compose_files), and the downtime doing its work in that order."""

from __future__ import annotations

import os
import sys
import threading

import pytest
from docker.errors import APIError

from salvage.core.model import (
    COMPOSE_CONFIG_FILES,
    COMPOSE_DEPENDS_ON,
    COMPOSE_PROJECT,
    COMPOSE_SERVICE,
    COMPOSE_WORKING_DIR,
    ComposeFiles,
    Container,
)
from salvage.core.ordering import Order, dependencies, in_order
from salvage.engine import compose_files
from salvage.safety.downtime import Downtime, Interrupted
from salvage.safety.record import Record


def service(name, project="shop", depends=None, **tags):
    tags[COMPOSE_PROJECT] = project
    tags[COMPOSE_SERVICE] = name
    if depends is not None:
        tags[COMPOSE_DEPENDS_ON] = depends
    return Container(f"id-{name}", f"{project}-{name}-1", "running", tags)


# --- which waits for which ------------------------------------------------------------------


def test_v2_labels_relate_a_project_s_containers():
    db, cache = service("db", depends=""), service("cache", depends="")
    web = service("web", depends="db:service_started:false,cache:service_healthy:true")
    plain = Container("id-plain", "plain", "running")
    order = dependencies([web, db, cache, plain])
    assert order == Order({"id-web": ("id-db", "id-cache")}, "")
    assert order.dependents() == {"id-db": {"id-web"}, "id-cache": {"id-web"}}
    assert order.workers > 1


def test_compose_1_files_relate_containers_without_labels():
    db, worker = service("db"), service("worker")
    files = {"shop": ComposeFiles(("/srv/shop/docker-compose.yml",), {"worker": ("db",)})}
    assert dependencies([worker, db], files).after == {"id-worker": ("id-db",)}
    # Without files, nothing is known to relate them: the planner read none for this project.
    assert dependencies([worker, db]).after == {}


def test_files_that_said_nothing_make_the_order_unknown_one_at_a_time():
    files = {"shop": ComposeFiles(("/x.yml",), problem="cannot read /x.yml: Permission denied")}
    order = dependencies([service("db"), service("worker")], files)
    assert order.unknown == 'compose project "shop": cannot read /x.yml: Permission denied'
    assert order.workers == 1


# --- doing work in that order ---------------------------------------------------------------


class Log:
    def __init__(self):
        self.lock = threading.Lock()
        self.events = []

    def add(self, *event):
        with self.lock:
            self.events.append(event)

    def index(self, *event):
        return self.events.index(event)


def test_unrelated_items_run_at_once():
    barrier = threading.Barrier(3, timeout=10)  # each item ends only once all three run
    errors = in_order(["a", "b", "c"], str, {}, lambda item: barrier.wait(), workers=8)
    assert errors == []


def test_an_item_starts_once_those_it_waits_for_are_done():
    log = Log()

    def work(item):
        log.add("start", item)
        log.add("end", item)

    # db waits for web and worker (its dependents stop first); web and worker run at once.
    errors = in_order(["db", "web", "worker"], str, {"db": {"web", "worker"}}, work, workers=8)
    assert errors == []
    assert log.index("start", "db") > max(log.index("end", "web"), log.index("end", "worker"))


def test_one_worker_goes_in_the_given_order_in_the_calling_thread():
    seen = []
    in_order(
        ["c", "a", "b"],
        str,
        {"c": {"b"}},
        lambda i: seen.append((i, threading.current_thread() is threading.main_thread())),
        workers=1,
    )
    assert seen == [("a", True), ("b", True), ("c", True)]


@pytest.mark.parametrize("workers", [1, 8])
def test_the_first_failure_starts_no_further_item(workers):
    started = []

    def work(item):
        started.append(item)
        if item == "a":
            raise RuntimeError("refused")

    errors = in_order(["a", "b", "c"], str, {"b": {"a"}, "c": {"b"}}, work, workers)
    assert [str(e) for e in errors] == ["refused"] and started == ["a"]


def test_keep_going_does_everything_even_after_a_failure():
    started = []

    def work(item):
        started.append(item)
        raise RuntimeError(item)

    errors = in_order(["a", "b", "c"], str, {"b": {"a"}, "c": {"b"}}, work, 8, keep_going=True)
    assert started == ["a", "b", "c"] and len(errors) == 3


def test_a_cycle_neither_hangs_nor_loses_items():
    done = []
    assert in_order(["a", "b"], str, {"a": {"b"}, "b": {"a"}}, done.append, 8) == []
    assert sorted(done) == ["a", "b"]


# --- the downtime: down in order, back in order, whatever fails -----------------------------


def containers(fake, *names):
    return [Container(fake.inspect_container(n)["Id"], n, "running") for n in names]


def test_one_container_s_failure_brings_every_recorded_one_back(fake, config):
    for name in ("a", "b", "c"):
        fake.add_container(name)
    a, b, c = containers(fake, "a", "b", "c")
    record = Record(config.state_directory)
    down = Downtime(fake.engine(), record, "run1", "daily")
    fake.fail("pause", APIError("cannot pause", explanation="cannot pause"))
    order = Order({b.id: (c.id,)})  # b depends on c: c waits for b
    with pytest.raises(APIError):
        down.enter_all([(a, "stop", 0), (b, "pause", 0), (c, "stop", 0)], order)
    assert fake.state("c") == "running"  # never touched: b, its dependent, failed
    assert down.end() == [] and record.entries() == []
    assert {fake.state(n) for n in ("a", "b", "c")} == {"running"}


def test_an_interrupt_touches_no_further_container_and_all_come_back(fake, config, monkeypatch):
    for name in ("web", "db"):
        fake.add_container(name)
    web, db = containers(fake, "web", "db")
    cancelled = threading.Event()
    down = Downtime(
        fake.engine(), Record(config.state_directory), "r", "daily", cancelled, lambda: "SIGTERM"
    )
    stop = fake.stop

    def stop_then_signal(ref, timeout=None):
        stop(ref, timeout)
        cancelled.set()  # the signal arrives while web goes down

    monkeypatch.setattr(fake, "stop", stop_then_signal)
    with pytest.raises(Interrupted, match=r'container "db": interrupted \(SIGTERM\)'):
        down.enter_all([(db, "stop", 0), (web, "stop", 0)], Order({web.id: (db.id,)}))
    assert fake.state("db") == "running" and fake.state("web") == "exited"
    assert down.end() == [] and fake.state("web") == "running"


def test_dependencies_come_back_before_their_dependents(fake, config):
    for name in ("db", "web", "worker"):
        fake.add_container(name)
    db, web, worker = containers(fake, "db", "web", "worker")
    down = Downtime(fake.engine(), Record(config.state_directory), "r", "daily")
    order = Order({web.id: (db.id,), worker.id: (db.id,)})
    down.enter_all([(c, "stop", 0) for c in (web, worker, db)], order)
    stops = [args[0] for args in fake.called("stop")]
    assert stops.index(db.id) > max(stops.index(web.id), stops.index(worker.id))
    fake.calls.clear()
    assert down.end() == []
    starts = [args[0] for args in fake.called("start")]
    assert starts[0] == db.id and sorted(starts[1:]) == sorted([web.id, worker.id])


# --- compose files (untrusted) --------------------------------------------------------------


def labels_for(directory, files="docker-compose.yml"):
    return {
        COMPOSE_PROJECT: "shop",
        COMPOSE_SERVICE: "db",
        COMPOSE_CONFIG_FILES: files,
        COMPOSE_WORKING_DIR: str(directory),
    }


def test_depends_on_as_a_list_a_mapping_links_and_a_shared_network(tmp_path):
    (tmp_path / "docker-compose.yml").write_text(
        'version: "2.4"\nservices:\n'
        "  db: {image: x}\n"
        "  worker: {image: x, depends_on: [db]}\n"
        "  web: {image: x, depends_on: {db: {condition: service_healthy}, cache: {}}}\n"
        "  cache: {image: x, links: ['db:database']}\n"
        "  side: {image: x, network_mode: 'service:web'}\n"
    )
    (tmp_path / "docker-compose.override.yml").write_text(
        "services:\n  worker: {depends_on: [cache]}\n"
    )
    found = compose_files.read(
        labels_for(tmp_path, "docker-compose.yml,docker-compose.override.yml")
    )
    assert found.problem == ""
    assert dict(found.depends_on) == {
        "db": (),
        "worker": ("db", "cache"),
        "web": ("db", "cache"),
        "cache": ("db",),
        "side": ("web",),
    }


def test_files_named_relative_to_where_compose_ran(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "app.yml").write_text("services:\n  a: {depends_on: [b]}\n  b: {}\n")
    # `docker-compose -f sub/app.yml up`, run in tmp_path: the project directory is sub.
    labels = labels_for(tmp_path / "sub", "sub/app.yml")
    assert compose_files.paths(labels) == [str(tmp_path / "sub" / "app.yml")]
    assert compose_files.read(labels).depends_on["a"] == ("b",)


@pytest.mark.parametrize(
    "content, problem",
    [
        (None, "cannot read {path}: No such file or directory"),
        ("services: [a, b\n", "{path}: not YAML (line 2)"),
        ("- just\n- a list\n", "{path}: not a compose file (no mapping at the top)"),
        ("services: 3\n", '{path}: "services" is not a mapping'),
        ("fifo", "{path}: not a regular file"),
    ],
)
def test_a_file_that_cannot_say_gives_one_line_and_no_order(tmp_path, content, problem):
    path = tmp_path / "docker-compose.yml"
    if content == "fifo":
        os.mkfifo(path)  # never waited on
    elif content is not None:
        path.write_text(content)
    found = compose_files.read(labels_for(tmp_path))
    assert found.problem == problem.format(path=path) and "\n" not in found.problem
    assert found.depends_on == {}


def test_without_pyyaml_the_order_is_unknown(tmp_path, monkeypatch):
    (tmp_path / "docker-compose.yml").write_text("services: {}\n")
    monkeypatch.setitem(sys.modules, "yaml", None)
    found = compose_files.read(labels_for(tmp_path))
    assert found.problem == f"python3-yaml is not installed to read {tmp_path}/docker-compose.yml"


def test_files_are_read_only_for_projects_without_depends_on_labels(tmp_path):
    (tmp_path / "docker-compose.yml").write_text("services:\n  db: {}\n")
    v1 = Container("1", "old-db-1", "running", {**labels_for(tmp_path), COMPOSE_PROJECT: "old"})
    v2 = service("db", project="new", depends="", **{COMPOSE_CONFIG_FILES: "/nowhere.yml"})
    found = compose_files.for_containers([v1, v2])
    assert list(found) == ["old"] and found["old"].problem == ""
