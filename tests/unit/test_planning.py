"""Planning a tide on a snapshot of the host, and checking a host's labels."""

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from salvage.config.validate import validate
from salvage.core.model import (
    COMPOSE_DEPENDS_ON,
    COMPOSE_PROJECT,
    COMPOSE_SERVICE,
    COMPOSE_VOLUME,
    Container,
    Host,
    Volume,
)
from salvage.core.planning import check_host, effective_action, plan_tide, stop_order


def service(name, project="shop", depends="", state="running", volumes=(), **tags):
    tags[COMPOSE_PROJECT] = project
    tags[COMPOSE_SERVICE] = name
    if depends:
        tags[COMPOSE_DEPENDS_ON] = depends
    return Container(f"id-{project}-{name}", f"{project}-{name}-1", state, tags, tuple(volumes))


def names(containers):
    return [c.name for c in containers]


# --- stop order -----------------------------------------------------------------------------


def test_dependents_stop_before_their_dependencies():
    db = service("db")
    cache = service("cache")
    web = service("web", depends="db:service_started:false,cache:service_healthy:true")
    proxy = service("proxy", depends="web:service_started:true")
    order = names(stop_order([db, cache, web, proxy]))
    assert order.index("shop-proxy-1") < order.index("shop-web-1")
    assert order.index("shop-web-1") < min(order.index("shop-db-1"), order.index("shop-cache-1"))


def test_without_dependencies_the_order_is_by_name():
    containers = [service(s) for s in ["c", "a", "b"]]
    assert names(stop_order(containers)) == ["shop-a-1", "shop-b-1", "shop-c-1"]


def test_dependencies_are_per_project():
    # blog's web depends on blog's db, not on shop's db.
    shop_db, blog_db = service("db"), service("db", project="blog")
    blog_web = service("web", project="blog", depends="db:service_started:false")
    order = names(stop_order([shop_db, blog_db, blog_web]))
    assert order == ["blog-web-1", "blog-db-1", "shop-db-1"]


def test_a_cycle_neither_hangs_nor_loses_containers():
    a = service("a", depends="b:service_started:false")
    b = service("b", depends="a:service_started:false")
    c = service("c", depends="a:service_started:false")
    assert sorted(names(stop_order([a, b, c]))) == ["shop-a-1", "shop-b-1", "shop-c-1"]


SERVICES = ["s0", "s1", "s2", "s3", "s4", "s5"]


@st.composite
def compose_projects(draw, acyclic):
    containers = []
    for name in draw(st.lists(st.sampled_from(SERVICES), unique=True)):
        # Acyclic: depend only on services later in SERVICES.
        pool = SERVICES[SERVICES.index(name) + 1 :] if acyclic else SERVICES
        deps = draw(st.lists(st.sampled_from(pool), unique=True)) if pool else []
        project = draw(st.sampled_from(["shop", "blog"]))
        depends = ",".join(f"{d}:service_started:false" for d in deps)
        containers.append(service(name, project, depends))
    return containers


@settings(max_examples=200, deadline=None)
@given(compose_projects(acyclic=False))
def test_stop_order_is_a_permutation(containers):
    order = stop_order(containers)
    assert sorted(c.id for c in order) == sorted(c.id for c in containers)


@settings(max_examples=200, deadline=None)
@given(compose_projects(acyclic=True))
def test_stop_order_puts_every_dependent_first(containers):
    position = {c.id: i for i, c in enumerate(stop_order(containers))}
    for c in containers:
        for other in containers:
            if other.project == c.project and other.service in c.depends_on:
                assert position[c.id] < position[other.id]


# --- plans ----------------------------------------------------------------------------------

CONFIG, _ = validate(
    {
        "cranes": {"s3": {"image": "example/crane-s3", "max_concurrent": 3}},
        "tides": {"daily": {"crane": "s3", "grouping": "smart", "max_concurrent": 2}},
    },
    "salvage.toml",
)


def shop_volume(name):
    return Volume(f"shop_{name}", labels={COMPOSE_PROJECT: "shop", COMPOSE_VOLUME: name})


def make_host(*extra):
    db = service("db", volumes=["shop_db"], **{"salvage.tide.daily": "db"})
    web = service(
        "web",
        depends="db:service_started:false",
        volumes=["shop_db", "shop_uploads"],
        **{"salvage.tide.daily": "uploads", "salvage.command.pre": "sync"},
    )
    worker = service("worker", state="paused", volumes=["shop_uploads"])
    legacy = Container(
        "id-legacy", "legacy", "exited", {"salvage.tide.daily": "legacy"}, ("legacy",)
    )
    volumes = [shop_volume("db"), shop_volume("uploads"), Volume("legacy"), Volume("unused")]
    return Host((db, web, worker, legacy, *extra), {v.name: v for v in volumes})


def test_plan_groups_and_steps():
    plan = plan_tide(make_host(), CONFIG, "daily")
    assert plan.problems == ()
    assert [(g.name, g.volumes) for g in plan.groups] == [
        ("legacy", ("legacy",)),
        ("shop", ("shop_db", "shop_uploads")),
    ]
    legacy, shop = plan.groups
    assert [(s.container.name, s.action) for s in legacy.steps] == [("legacy", "none")]
    assert [(s.container.name, s.action) for s in shop.steps] == [
        ("shop-web-1", "ignore"),  # a pre command makes "ignore" the default
        ("shop-db-1", "stop"),  # after web, which depends on it
        ("shop-worker-1", "none"),  # paused: left as it is
    ]
    assert all(g.problems == () for g in plan.groups)


def test_effective_action_only_changes_live_containers():
    assert effective_action("pause", "running") == "pause"
    assert effective_action("stop", "restarting") == "stop"  # between two runs of its loop
    for state in ["paused", "exited", "created", "dead"]:
        assert effective_action("stop", state) == "none"


def test_a_rm_container_fails_its_group_unless_paused_or_ignored():
    def plan_with(**tags):
        rm = Container("id-rm", "rm", "running", tags, ("shop_db",), auto_remove=True)
        return plan_tide(make_host(rm), CONFIG, "daily")

    shop = {g.name: g for g in plan_with().groups}["shop_db"]
    assert [str(p) for p in shop.problems] == [
        'container "rm": was started with --rm (AutoRemove), so stopping it would delete it:'
        " not stopped; set salvage.action=pause or ignore"
    ]
    for action in ("pause", "ignore"):
        groups = plan_with(**{"salvage.action": action}).groups
        assert all(g.problems == () for g in groups)


def test_a_malformed_label_fails_its_group_only():
    bad = Container("id-bad", "bad", "running", {"salvage.action": "halt"}, ("shop_db",))
    plan = plan_tide(make_host(bad), CONFIG, "daily")
    by_name = {g.name: g for g in plan.groups}
    assert by_name["legacy"].problems == ()
    shop = by_name["shop_db"]  # not named after a single project any more
    assert "bad" in names(s.container for s in shop.steps)
    assert [str(p) for p in shop.problems] == [
        'container "bad": label salvage.action: "halt" is not one of stop, pause, ignore'
    ]


def test_unresolved_reference_is_a_plan_problem_and_the_rest_still_plans():
    lost = Container("id-lost", "lost", "running", {"salvage.tide.daily": "g:gone, legacy"})
    plan = plan_tide(make_host(lost), CONFIG, "daily")
    assert [str(p) for p in plan.problems] == [
        'container "lost": label salvage.tide.daily: no volume named "gone"'
    ]
    assert [g.name for g in plan.groups] == ["legacy", "shop"]


def test_bad_labels_of_other_tides_are_not_this_plans_problems():
    odd = Container("id-odd", "odd", "running", {"salvage.tide.weekly": "-bad"})
    assert plan_tide(make_host(odd), CONFIG, "daily").problems == ()


def test_plan_as_dict_is_json():
    data = json.loads(json.dumps(plan_tide(make_host(), CONFIG, "daily").as_dict()))
    assert (data["tide"], data["crane"], data["image"]) == ("daily", "s3", "example/crane-s3")
    assert (data["grouping"], data["max_concurrent"], data["problems"]) == ("smart", 2, [])
    shop = data["groups"][1]
    assert shop["volumes"] == ["shop_db", "shop_uploads"]
    assert shop["containers"][0] == {
        "container": "shop-web-1",
        "id": "id-shop-web",
        "state": "running",
        "action": "ignore",
        "pre": "sync",
        "post": None,
        "user": None,
        "depends_on": ["shop-db-1"],
    }
    assert shop["order_unknown"] is None


def test_empty_host_plans_nothing():
    plan = plan_tide(Host(), CONFIG, "daily")
    assert (plan.groups, plan.problems) == ((), ())


# --- check ----------------------------------------------------------------------------------


def test_check_host_reports_every_label_problem():
    stray = Container(
        "id-stray",
        "stray",
        "running",
        {"salvage.tide.weekly": "legacy", "salvage.tide.daily": "g:gone", "salvage.user": ""},
    )
    problems = [str(p) for p in check_host(make_host(stray), CONFIG)]
    assert problems == [
        'container "stray": label salvage.tide.weekly: no tide named "weekly" in salvage.toml',
        'container "stray": label salvage.tide.daily: no volume named "gone"',
        'container "stray": label salvage.user: is empty',
    ]


def test_check_host_on_a_clean_host():
    assert check_host(make_host(), CONFIG) == []
