"""The salvage.dump* labels (pure): which dump, which tides, what is wrong in one line;
the plan says whether the database's own volume is left out or backed up cold."""

from __future__ import annotations

from salvage.core import dumps, labels
from salvage.core.model import Container, Host, Volume


def _db(**extra) -> Container:
    return Container("id1", "shop-db", "running", labels=extra, volumes=("shop_data",))


def test_builtin_kinds_and_their_tides():
    dump, tides, problems = dumps.parse(
        _db(**{"salvage.dump": "postgres", "salvage.dump.tide": "daily, weekly"})
    )
    assert problems == [] and tides == ["daily", "weekly"]
    assert dump.name == "shop-db.dump" and "pg_dumpall" in dump.command
    assert "psql" in dump.restore and "ON_ERROR_STOP=1" in dump.restore
    maria, _, _ = dumps.parse(_db(**{"salvage.dump": "mysql", "salvage.dump.tide": "daily"}))
    assert "--single-transaction --all-databases" in maria.command
    assert "MYSQL_PWD" in maria.command and "MARIADB_ROOT_PASSWORD" in maria.command


def test_no_secret_value_is_ever_part_of_a_script():
    """The scripts name variables; their values stay in the container's environment."""
    for command, restore in dumps.BUILTIN.values():
        for script in (command, restore):
            assert "_FILE" in script and "-p" not in script.split()


def test_custom_needs_a_command_and_problems_are_one_line_each():
    _, _, bad = dumps.parse(_db(**{"salvage.dump": "custom", "salvage.dump.tide": "daily"}))
    assert [str(p) for p in bad] == [
        'container "shop-db": label salvage.dump: custom needs salvage.dump.command'
    ]
    _, _, bad = dumps.parse(_db(**{"salvage.dump": "oracle"}))
    assert [str(p) for p in bad] == [
        'container "shop-db": label salvage.dump: "oracle" is not one of postgres, mariadb,'
        " mysql, custom",
        'container "shop-db": label salvage.dump: names no tide: add'
        " salvage.dump.tide=<tide>[,<tide>]",
    ]
    _, _, bad = dumps.parse(_db(**{"salvage.dump.tide": "daily"}))
    assert len(bad) == 1 and "needs salvage.dump=" in str(bad[0])


def test_override_and_check_against_the_config():
    db = _db(
        **{
            "salvage.dump": "custom",
            "salvage.dump.tide": "daily,nightly",
            "salvage.dump.command": "mongodump --archive",
        }
    )
    dump, _, _ = dumps.parse(db)
    assert dump.command == "mongodump --archive" and dump.restore is None
    found = dumps.check(Host((db,)), {"daily": None})
    assert [str(p) for p in found] == [
        'container "shop-db": label salvage.dump.tide: no tide named "nightly"'
    ]
    assert dumps.tide_dumps(Host((db,)), "daily")[0] == [dump]
    assert dumps.tide_dumps(Host((db,)), "weekly") == ([], [])


def test_dump_labels_are_salvage_labels():
    _, problems = labels.parse_settings(
        _db(**{"salvage.dump": "postgres", "salvage.dump.tide": "daily"})
    )
    assert problems == []
    _, problems = labels.parse_settings(_db(**{"salvage.dumpling": "x"}))
    assert len(problems) == 1


def test_the_plan_says_whether_the_database_volume_is_left_out_or_backed_up_cold():
    from salvage.actions.plan import render
    from salvage.config.validate import validate
    from salvage.core.planning import plan_tide

    config, _ = validate(
        {
            "cranes": {"tar": {"image": "salvage/crane-tar"}},
            "tides": {"daily": {"crane": "tar"}, "weekly": {"crane": "tar"}},
        },
        "salvage.toml",
    )
    db = Container(
        "id1",
        "shop-db",
        "running",
        volumes=("shop_data",),
        labels={
            "salvage.dump": "postgres",
            "salvage.dump.tide": "daily,weekly",
            "salvage.tide.weekly": "shop_data",
        },
    )
    host = Host((db,), {"shop_data": Volume("shop_data")})
    plans = [plan_tide(host, config, tide) for tide in ("daily", "weekly")]
    text = render(plans, {tide: dumps.tide_dumps(host, tide) for tide in ("daily", "weekly")})
    daily, weekly = text.split("tide weekly")
    assert "dump shop-db.dump: postgres in shop-db [running]: keeps running" in daily
    assert "its volume shop_data: left out (dumped instead)" in daily
    assert "no volume is labelled" not in daily
    assert "its volume shop_data: also backed up cold (its group stops it)" in weekly
    assert "shop-db [running]: stop" in weekly
