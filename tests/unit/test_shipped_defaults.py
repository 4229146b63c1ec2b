"""The shipped configuration (examples/salvage.toml, installed as /etc/salvage/salvage.toml)
and docs/configuration.md say the same defaults as the schema."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from salvage.config import load
from salvage.config.schema import Config, Docker, Inhibit, Tide, default_crane
from salvage.config.validate import DOCKER_KEYS, INHIBIT_KEYS, TIDE_KEYS, TOP_KEYS, validate
from salvage.systemd.generator import drop_in

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples/salvage.toml"
DOCS = ROOT / "docs/configuration.md"


def defaults() -> dict:
    config, problems = validate({}, "x")  # a host without a configuration file
    assert not problems
    return {
        "": config,
        "tides.daily": config.tides["daily"],
        "cranes.tar": config.cranes["tar"],
        "docker": config.docker,
        "inhibit": config.inhibit,
    }


def test_every_setting_the_example_calls_a_default_is_the_default(tmp_path):
    copy = tmp_path / "salvage.toml"
    copy.write_bytes(EXAMPLE.read_bytes())
    copy.chmod(0o600)
    loaded = load(str(copy))  # the shipped file loads
    assert list(loaded.tides) == ["daily"]

    table, checked = "", []
    for line in EXAMPLE.read_text().splitlines():
        if match := re.fullmatch(r"\[([\w.]+)\]", line.strip()):
            table = match.group(1)
        elif line and not line.startswith("#"):
            setting, _, comment = line.partition("#")
            assert "(default)" in comment or "not a default" in comment, line
            if "(default)" in comment:
                ((key, value),) = tomllib.loads(setting).items()
                assert getattr(loaded_table(loaded, table), key) == getattr(
                    defaults()[table], key
                ), line
                checked.append(f"{table}.{key}")
    assert "tides.daily.grouping" in checked and len(checked) >= 10


def loaded_table(config: Config, table: str):
    return {
        "": config,
        "tides.daily": config.tides.get("daily"),
        "cranes.tar": config.cranes.get("tar"),
    }[table]


def docs_defaults(section: str) -> dict:
    """key -> the default column of the table under `## <section>` in configuration.md."""
    text = DOCS.read_text()
    body = text.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    return dict(re.findall(r"^\| `(\w+)` \| `([^`]*)` \|", body, re.M))


@pytest.mark.parametrize(
    "section, keys, default",
    [
        ("Top level", TOP_KEYS, Config(path="x")),
        ("`[docker]`", DOCKER_KEYS, Docker()),
        ("`[inhibit]`", INHIBIT_KEYS, Inhibit()),
        ("`[tides.<name>]`", TIDE_KEYS, Tide(name="x")),
    ],
)
def test_the_documented_defaults_are_the_schema_defaults(section, keys, default):
    documented = docs_defaults(section)
    assert documented, section
    for key, text in documented.items():
        try:
            value = tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            value = text  # a bare path, e.g. /var/lib/salvage
        if key == "schedule":  # and the timer runs it so
            assert f"OnCalendar={value}\n" in drop_in(default, "x")
        assert getattr(default, key) == keys[key](value), (section, key)


def test_the_grouping_default_is_smart_everywhere():
    assert Tide(name="x").grouping == "smart" == docs_defaults("`[tides.<name>]`")["grouping"][1:-1]
    assert 'grouping = "smart"' in EXAMPLE.read_text()
    assert default_crane() == defaults()["cranes.tar"]
