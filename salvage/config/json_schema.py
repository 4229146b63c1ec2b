"""salvage.toml as a JSON Schema (`salvage config schema`), for editors that check TOML
against one (taplo, Even Better TOML). salvage's own check stays the authority: some
rules (a tide's crane exists, a webhook's template, the schedule) are only in validate.py."""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, Type

from salvage.config.schema import Config, Crane, Docker, Inhibit, Notify, Tide, default, keys

DRAFT = "http://json-schema.org/draft-07/schema#"  # what editors (taplo) understand best


def _table(cls: Type[Any], description: str) -> Dict[str, Any]:
    properties = {}
    for name, key in keys(cls).items():
        prop = dict(key.check.schema, description=key.doc)
        value = default(cls, name)
        if value is not dataclasses.MISSING and value is not None and not key.shown:
            prop["default"] = key.check.written(value)
        properties[name] = prop
    required = [name for name in keys(cls) if default(cls, name) is dataclasses.MISSING]
    table: Dict[str, Any] = {"description": description, "type": "object"}
    table["properties"] = properties
    table["additionalProperties"] = False  # an unknown key is an error, as in validate.py
    if required:
        table["required"] = required
    return table


def json_schema() -> Dict[str, Any]:
    top = _table(Config, "salvage's configuration (docs/configuration.md)")
    top["properties"].update(
        tides={
            "description": "[tides.<name>]: a set of volumes backed up together, on one schedule",
            "type": "object",
            "additionalProperties": _table(Tide, "a tide"),
        },
        cranes={
            "description": "[cranes.<name>]: a container image that backs up one volume",
            "type": "object",
            "additionalProperties": _table(Crane, "a crane"),
        },
        docker=_table(Docker, "[docker]: the connection to the Docker engine"),
        inhibit=_table(
            Inhibit, "[inhibit]: the logind inhibitor lock held while containers are down"
        ),
        notify={
            "description": "[[notify]]: notification targets",
            "type": "array",
            "items": _table(Notify, "a notification target"),
        },
    )
    return {"$schema": DRAFT, "title": "salvage.toml", **top}
