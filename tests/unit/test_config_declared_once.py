"""The configuration is declared once (salvage/config/schema.py): docs/configuration.md's
key tables and examples/salvage.toml are generated from it and must not drift, and
`salvage config schema` describes the same keys as validate.py accepts."""

from __future__ import annotations

import json
import sys

import pytest
from click.testing import CliRunner

from salvage import cli
from salvage.config import docs
from salvage.config.validate import (
    CRANE_KEYS,
    DOCKER_KEYS,
    INHIBIT_KEYS,
    NOTIFY_KEYS,
    TIDE_KEYS,
    TOP_KEYS,
    validate,
)
from salvage.core import grouping
from salvage.report import notify

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DRAFT = "http://json-schema.org/draft-07/schema#"


def printed_schema() -> dict:
    result = CliRunner().invoke(cli.main, ["config", "schema"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_the_committed_docs_and_example_are_what_the_schema_generates():
    assert docs.docs(docs.DOCS.read_text()) == docs.DOCS.read_text(), "make config-docs"
    assert docs.example(docs.EXAMPLE.read_text()) == docs.EXAMPLE.read_text(), "make config-docs"
    assert docs.main(["--check"]) == 0


def test_a_drifted_table_or_example_is_caught():
    text = docs.DOCS.read_text()
    drifted = text.replace('| `crane_timeout` | `"6h"` |', '| `crane_timeout` | `"5h"` |')
    assert drifted != text and docs.docs(drifted) == text
    example = docs.EXAMPLE.read_text()
    drifted = example.replace('grouping = "smart"', 'grouping = "project"')
    assert drifted != example and docs.example(drifted) == example
    with pytest.raises(ValueError, match="generated: tides"):
        docs.example(example.replace("# generated: tides\n", ""))


def test_every_key_validate_accepts_is_in_the_schema_and_no_other():
    schema = printed_schema()
    props = schema["properties"]
    tables = {
        "": (schema, TOP_KEYS),
        "docker": (props["docker"], DOCKER_KEYS),
        "inhibit": (props["inhibit"], INHIBIT_KEYS),
        "tides.<name>": (props["tides"]["additionalProperties"], TIDE_KEYS),
        "cranes.<name>": (props["cranes"]["additionalProperties"], CRANE_KEYS),
        "[[notify]]": (props["notify"]["items"], NOTIFY_KEYS),
    }
    for name, (table, keys) in tables.items():
        assert table["type"] == "object" and table["additionalProperties"] is False, name
        sections = {"tides", "cranes", "docker", "inhibit", "notify"} if name == "" else set()
        assert set(table["properties"]) - sections == set(keys), name
        for key, prop in table["properties"].items():
            assert prop.get("description"), (name, key)
    assert props["cranes"]["additionalProperties"]["required"] == ["image"]
    assert props["notify"]["items"]["required"] == ["kind", "url"]
    # One list each: the kinds are salvage.report.notify's, the modes salvage.core.grouping's.
    assert props["notify"]["items"]["properties"]["kind"]["enum"] == list(notify.KINDS)
    tide = props["tides"]["additionalProperties"]["properties"]
    assert tide["grouping"]["enum"] == list(grouping.MODES)
    assert tide["crane_timeout"]["default"] == "6h"


def test_the_schema_is_a_json_schema_the_shipped_example_meets():
    schema = printed_schema()
    assert schema["$schema"] == DRAFT
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.Draft7Validator.check_schema(schema)
    validator = jsonschema.Draft7Validator(schema)
    example = tomllib.loads(docs.EXAMPLE.read_text())
    assert not list(validator.iter_errors(example))
    full = tomllib.loads(
        """
        machine = "box"
        lock_timeout = 90
        [docker]
        timeout = "2m"
        [inhibit]
        what = "shutdown:idle"
        [tides.nightly]
        crane = "s3"
        grouping = "project"
        randomized_delay = 0
        [cranes.s3]
        image = "example/s3"
        env = { BUCKET = "b", PART_MB = 64 }
        mounts = { "/etc/ssl" = "/ssl", keys = "/keys" }
        secrets = { AWS_SECRET = "/etc/salvage/aws" }
        [[notify]]
        kind = "uptime-kuma"
        url = "https://kuma.example/api/push/x"
        tides = ["nightly"]
        """
    )
    assert validate(full, "x")[1] == [] and not list(validator.iter_errors(full))
    # What salvage refuses, an editor marks too.
    for bad in (
        {"tides": {"x": {"grouping": "sometimes"}}},
        {"cranes": {"s3": {"pul": "always", "image": "i"}}},
        {"cranes": {"s3": {}}},
        {"notify": [{"kind": "email", "url": "https://x"}]},
        {"docker": {"timeout": "soon"}},
        {"inhibit": {"what": "shutdown:nap"}},
        {"cranes": {"s3": {"image": "i", "env": {"SALVAGE_X": "1"}}}},
        {"cranes": {"s3": {"image": "i", "mounts": {"a/b": "/x"}}}},
    ):
        assert validate(bad, "x")[1], bad
        assert list(validator.iter_errors(bad)), bad
