"""Which volumes and bind mounts a tide selects, and why (pure decisions, no engine)."""

import json

from salvage.actions.plan import render
from salvage.config.schema import Tide
from salvage.config.validate import validate
from salvage.core.labels import parse_settings
from salvage.core.model import (
    ANONYMOUS,
    COMPOSE_PROJECT,
    COMPOSE_SERVICE,
    COMPOSE_VOLUME,
    COMPOSE_WORKING_DIR,
    Bind,
    Container,
    Host,
    Volume,
)
from salvage.core.planning import check_host, plan_tide
from salvage.core.selection import bind_name, select

HEX = "0123456789abcdef" * 4


def vol(name, **tags):
    return Volume(name, labels=tags)


def box(name, volumes=(), binds=(), **tags):
    return Container(f"id-{name}", name, "running", tags, tuple(volumes), tuple(binds))


def host(*items):
    volumes = {v.name: v for v in items if isinstance(v, Volume)}
    return Host(tuple(c for c in items if isinstance(c, Container)), volumes)


def why(selection):
    return {c.name: (c.selected, c.reason) for c in selection.choices}


def test_labels_is_the_default_and_selects_only_what_labels_name():
    found = select(
        host(vol("a"), vol("b"), box("c", ["a", "b"], **{"salvage.tide.daily": "a"})),
        Tide("daily"),
    )
    assert why(found) == {"a": (True, 'label salvage.tide.daily on container "c"')}


def test_all_takes_every_named_volume_used_or_not_and_leaves_out_the_rest_saying_why():
    scene = host(
        vol("used"),
        vol("unused"),
        vol("labelled"),
        vol(HEX),  # an older engine's anonymous volume: only its name says so
        vol("anon-marked", **{ANONYMOUS: ""}),
        vol("shop_cache"),
        vol("optout", **{"salvage.exclude": "true"}),
        vol("private"),
        vol("salvage-restore-0123456789ab", **{"salvage.scratch": "r"}),
        vol("work", **{"salvage.instance": "/var/lib/salvage"}),  # any volume salvage made
        box("app", ["used", HEX]),
        box("other", ["labelled"], **{"salvage.tide.daily": "labelled"}),
        box("secret", ["private"], **{"salvage.exclude": "true"}),
    )
    tide = Tide("daily", select="all", exclude=("*_cache",))
    assert why(select(scene, tide)) == {
        "labelled": (True, 'label salvage.tide.daily on container "other"'),
        "used": (True, "select = all"),
        "unused": (True, "select = all"),
        HEX: (False, "anonymous (include_anonymous = false)"),
        "anon-marked": (False, "anonymous (include_anonymous = false)"),
        "shop_cache": (False, 'excluded by pattern "*_cache"'),
        "optout": (False, "excluded by label salvage.exclude on the volume"),
        "private": (False, 'excluded by label salvage.exclude on container "secret"'),
        "salvage-restore-0123456789ab": (False, "salvage's own volume"),
        "work": (False, "salvage's own volume"),
    }
    with_anonymous = select(scene, Tide("daily", select="all", include_anonymous=True))
    assert {HEX, "anon-marked"} <= set(with_anonymous.names)


def test_an_exclusion_wins_over_a_label():
    scene = host(
        vol("a", **{"salvage.exclude": "true"}),
        vol("b_cache"),
        box("c", ["a", "b_cache"], **{"salvage.tide.daily": "a,b_cache"}),
    )
    assert select(scene, Tide("daily", exclude=("*_cache",))).names == []


def test_a_bind_mount_is_named_by_its_destination_in_the_labelled_container():
    scene = host(
        vol("db"),
        box(
            "db1",
            ["db"],
            [Bind("/srv/shop/config", "/config")],
            **{"salvage.tide.daily": "db,/config/"},
        ),
        box("reader", [], [Bind("/srv/shop/config", "/etc/app")]),
    )
    found = select(scene, Tide("daily"))
    assert found.problems == []
    assert found.names == ["db", "bind_srv_shop_config"]
    bind = found.binds["bind_srv_shop_config"]
    assert (bind.host_path, bind.containers) == ("/srv/shop/config", ("db1", "reader"))


def test_a_label_naming_a_path_the_container_does_not_bind_mount_is_one_line():
    scene = host(
        vol("db"),
        box("evil", ["db"], [Bind("/srv/x", "/x")], **{"salvage.tide.daily": "/etc,/db"}),
        box("root", [], [Bind("/etc", "/etc")]),  # another container's bind does not count
    )
    found = select(scene, Tide("daily"))
    assert found.names == [] and found.binds == {}
    assert [str(p) for p in found.problems] == [
        'container "evil": label salvage.tide.daily: "/etc" is not a bind mount of this'
        " container (only a container's own bind mounts can be backed up)",
        'container "evil": label salvage.tide.daily: "/db" is not a bind mount of this'
        " container (only a container's own bind mounts can be backed up)",
    ]


def test_a_path_with_dot_dot_is_not_a_destination():
    scene = host(box("c", [], [Bind("/srv", "/a")], **{"salvage.tide.daily": "/a/../b"}))
    (problem,) = select(scene, Tide("daily")).problems
    assert str(problem) == 'container "c": label salvage.tide.daily: "/a/../b" is not a path'


def compose(name, binds, project="shop", directory="/srv/shop", **tags):
    tags.update({COMPOSE_PROJECT: project, COMPOSE_SERVICE: name})
    if directory:
        tags[COMPOSE_WORKING_DIR] = directory
    return box(f"{project}-{name}-1", [], binds, **tags)


def test_all_takes_the_bind_mounts_under_a_compose_project_directory_only():
    scene = host(
        compose(
            "app",
            [
                Bind("/srv/shop/data", "/data"),
                Bind("/etc/ssl", "/ssl"),
                Bind("/var/run/docker.sock", "/sock"),
            ],
        ),
        compose("web", [Bind("/srv/shop", "/site")]),
        compose("cfg", [Bind("/srv/shopping/x", "/x")]),  # a sibling, not under it
        box("plain", [], [Bind("/srv/shop/plain", "/p")]),  # not compose
        compose("skip", [Bind("/srv/shop/logs", "/logs")], **{"salvage.exclude": "true"}),
    )
    found = why(select(scene, Tide("daily", select="all", exclude=("/srv/shop",))))
    under = 'select = all: under compose project "shop"\'s directory'
    assert found == {
        "bind_srv_shop_data": (True, under),
        "bind_srv_shop": (False, 'excluded by pattern "/srv/shop"'),
        "bind_srv_shop_logs": (
            False,
            'excluded by label salvage.exclude on container "shop-skip-1"',
        ),
    }


def test_bind_names_are_valid_volume_names_and_stable():
    assert bind_name("/srv/my app/ü") == "bind_srv_my_app__"
    assert bind_name("/srv/shop/config/") == bind_name("/srv/shop//config")
    assert bind_name("/") == "bind_root"


def test_the_plan_groups_a_bind_mount_with_the_containers_that_mount_its_host_path():
    config, problems = validate({"tides": {"daily": {"select": "all"}}}, "salvage.toml")
    assert not problems
    scene = host(
        vol("shop_db", **{COMPOSE_PROJECT: "shop", COMPOSE_VOLUME: "db"}),
        vol("lonely"),
        compose("db", [Bind("/srv/shop/conf", "/conf")]),
        compose("worker", [Bind("/srv/shop/conf", "/etc/w")]),
        Container("id-x", "x", "running", {}, ("shop_db",)),
    )
    plan = plan_tide(scene, config, "daily")
    shapes = {g.volumes: sorted(s.container.name for s in g.steps) for g in plan.groups}
    assert shapes == {
        ("bind_srv_shop_conf",): ["shop-db-1", "shop-worker-1"],
        ("lonely",): [],
        ("shop_db",): ["x"],
    }
    data = json.loads(json.dumps(plan.as_dict()))
    assert data["select"] == "all"
    assert {c["name"]: c["reason"] for c in data["selection"]}["lonely"] == "select = all"
    assert "    in  lonely: select = all" in render([plan]).splitlines()


def test_check_reports_a_bad_exclude_label_and_a_bad_bind_reference():
    config, _ = validate({"tides": {"daily": {}}}, "salvage.toml")
    scene = host(box("c", [], [], **{"salvage.exclude": "yes", "salvage.tide.daily": "/x"}))
    assert [str(p) for p in check_host(scene, config)] == [
        'container "c": label salvage.tide.daily: "/x" is not a bind mount of this container'
        " (only a container's own bind mounts can be backed up)",
        'container "c": label salvage.exclude: "yes" is not true or false',
    ]
    assert parse_settings(box("d", **{"salvage.exclude": "TRUE"}))[1] == []


def test_the_configuration_checks_select_and_exclude():
    _, problems = validate(
        {"tides": {"daily": {"select": "some", "exclude": "x*", "include_anonymous": 1}}}, "f"
    )
    assert sorted(p.where for p in problems) == [
        "f: tides.daily.exclude",
        "f: tides.daily.include_anonymous",
        "f: tides.daily.select",
    ]


def test_a_file_bind_mount_is_never_backed_up():
    nginx = Bind("/srv/shop/nginx.conf", "/etc/nginx/nginx.conf", directory=False)
    unseen = Bind("/srv/shop/data", "/data", directory=None)  # not visible from here: kept
    scene = host(compose("web", [nginx, unseen], **{"salvage.tide.daily": "/etc/nginx/nginx.conf"}))
    found = select(scene, Tide("daily", select="all"))
    assert found.names == ["bind_srv_shop_data"]
    assert [str(p) for p in found.problems] == [
        'container "shop-web-1": label salvage.tide.daily: "/etc/nginx/nginx.conf" is a file'
        " (/srv/shop/nginx.conf): only directories can be backed up"
    ]


def test_all_leaves_out_a_database_it_dumps_live_unless_a_label_names_its_volume():
    dumped = {"salvage.dump": "postgres", "salvage.dump.tide": "daily"}
    scene = host(
        vol("pgdata"),
        vol("cache"),
        vol("files"),
        box("db", ["pgdata"], **dumped),
        box("db2", ["cache"], **dumped, **{"salvage.tide.daily": "cache"}),
        box("app", ["files"]),
    )
    found = why(select(scene, Tide("daily", select="all")))
    assert found["pgdata"] == (False, 'dumped instead (salvage.dump on container "db")')
    assert found["cache"] == (True, 'label salvage.tide.daily on container "db2"')
    assert found["files"] == (True, "select = all")
    # Another tide does not dump it: its volume is taken as any other.
    assert why(select(scene, Tide("weekly", select="all")))["pgdata"] == (True, "select = all")


def test_a_label_naming_its_own_bind_s_host_path_reaches_nothing():
    """A label names a bind mount by where the container sees it, never by its host path."""
    scene = host(
        box("c", [], [Bind("/srv/secret", "/data")], **{"salvage.tide.daily": "/srv/secret"})
    )
    found = select(scene, Tide("daily"))
    assert found.names == [] and found.binds == {}
    assert [str(p) for p in found.problems] == [
        'container "c": label salvage.tide.daily: "/srv/secret" is not a bind mount of this'
        " container (only a container's own bind mounts can be backed up)"
    ]


def test_a_project_whose_directory_is_the_root_takes_no_bind_mount_under_all():
    """Every host path is under "/": such a project's binds are not its own files, not even
    the host's root itself."""
    scene = host(
        compose("app", [Bind("/", "/host"), Bind("/srv/data", "/data")], "rooted", "/"),
        compose("web", [Bind("/srv/shop/site", "/site")], project="shop"),
    )
    found = why(select(scene, Tide("daily", select="all")))
    assert found == {
        "bind_srv_shop_site": (True, 'select = all: under compose project "shop"\'s directory')
    }


def test_a_bind_name_keeps_capitals_and_a_trailing_x():
    assert bind_name("/srv/Shop/X") == "bind_srv_Shop_X"
    assert bind_name("/Xsrv/data/") == "bind_Xsrv_data"


def test_a_choice_reads_as_in_or_out_with_its_host_path_and_reason():
    from salvage.core.selection import Choice

    assert str(Choice("db", True, "label")) == "in  db: label"
    assert str(Choice("bind_srv", False, "excluded", "bind", "/srv")) == (
        "out bind_srv (/srv): excluded"
    )


def test_a_bind_whose_backup_name_is_a_volume_s_is_not_backed_up_and_said():
    scene = host(
        vol("bind_srv_data"),
        vol("db"),
        box("c", ["db"], [Bind("/srv/data", "/data")], **{"salvage.tide.daily": "/data,db"}),
    )
    found = select(scene, Tide("daily"))
    assert [str(p) for p in found.problems] == [
        'bind mount /srv/data: its backup name "bind_srv_data" is also a volume\'s name: not'
        " backed up"
    ]
    assert found.names == ["db"] and found.binds == {}
    assert [c.as_dict() for c in found.choices] == [
        {
            "name": "db",
            "kind": "volume",
            "selected": True,
            "reason": 'label salvage.tide.daily on container "c"',
        }
    ]
