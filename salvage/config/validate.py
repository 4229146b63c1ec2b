"""Turn a parsed TOML document into a Config, reporting every problem with its key path.

Every problem is one line, `<file>: <key.path>: <what is wrong>`; unknown keys are
problems too, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import difflib
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from salvage.config.checks import NOTIFY_EVENTS, duration, http_url  # noqa: F401 (duration: for callers)
from salvage.config.schema import (
    DEFAULT_CRANE,
    DEFAULT_TIDE,
    SECTIONS,
    Config,
    Crane,
    Docker,
    Inhibit,
    Notify,
    Tide,
    default_crane,
    keys,
)
from salvage.core.model import Problem


def _checks(cls: type) -> Dict[str, Callable[[Any], Any]]:
    return {name: k.check for name, k in keys(cls).items()}


TOP_KEYS = _checks(Config)
DOCKER_KEYS = _checks(Docker)
INHIBIT_KEYS = _checks(Inhibit)
NOTIFY_KEYS = _checks(Notify)
TIDE_KEYS = _checks(Tide)
CRANE_KEYS = _checks(Crane)


class _Checker:
    def __init__(self, path: str) -> None:
        self.path = path
        self.problems: List[Problem] = []

    def problem(self, key: str, message: str) -> None:
        self.problems.append(Problem(f"{self.path}: {key}", message))

    def table(
        self, prefix: str, raw: Mapping[str, Any], keys: Mapping[str, Callable[[Any], Any]]
    ) -> Dict[str, Any]:
        values = {}
        for key, value in raw.items():
            path = f"{prefix}{key}"
            if key not in keys:
                close = difflib.get_close_matches(key, list(keys), n=1)
                hint = f' (did you mean "{close[0]}"?)' if close else ""
                self.problem(path, f"unknown key{hint}")
                continue
            try:
                values[key] = keys[key](value)
            except ValueError as error:
                self.problem(path, str(error))
        return values

    def subtable(
        self, raw: Mapping[str, Any], name: str, keys: Mapping[str, Callable[[Any], Any]]
    ) -> Dict[str, Any]:
        section = raw.get(name, {})
        if not isinstance(section, dict):
            self.problem(name, f"must be a table ([{name}])")
            return {}
        return self.table(f"{name}.", section, keys)

    def notify(self, raw: Mapping[str, Any]) -> Tuple[Notify, ...]:
        entries = raw.get("notify", [])
        if not isinstance(entries, list):
            self.problem("notify", "must be a list of [[notify]] tables")
            return ()
        targets = []
        for index, entry in enumerate(entries):
            key = f"notify[{index}]"
            if not isinstance(entry, dict):
                self.problem(key, "must be a table ([[notify]])")
                continue
            fields = self.table(f"{key}.", entry, NOTIFY_KEYS)
            if "url" in fields and fields.get("kind") == "apprise":
                from salvage.report.notify.apprise import check as apprise_check

                if why := apprise_check(fields["url"]):
                    self.problem(f"{key}.url", why)
                    fields.pop("url")
            elif "url" in fields:
                try:
                    http_url(fields["url"])
                except ValueError as error:
                    self.problem(f"{key}.url", str(error))
                    fields.pop("url")
            missing = [k for k in ("kind", "url") if k not in entry]
            for k in missing:
                self.problem(f"{key}.{k}", "is required")
            if fields.get("template") and fields.get("kind") != "webhook":
                self.problem(f"{key}.template", "only a webhook has a template")
            elif fields.get("template"):
                from salvage.report.notify.webhook import check  # only when there is one to check

                if why := check(fields["template"]):
                    self.problem(f"{key}.template", why)
            if fields.get("kind") in ("healthchecks", "uptime-kuma"):
                # A check must hear of successes too, or it counts every good run as missed.
                tide_events = tuple(e for e in NOTIFY_EVENTS if e.startswith("tide."))
                if fields["kind"] == "uptime-kuma":  # a push monitor has no "started"
                    tide_events = tuple(e for e in tide_events if e != "tide.start")
                fields.setdefault("events", tide_events)
                if not set(fields["events"]) <= set(tide_events):
                    self.problem(
                        f"{key}.events", f"a check follows whole tides: {', '.join(tide_events)}"
                    )
            if not missing and "kind" in fields and "url" in fields:
                targets.append(Notify(**fields))
        return tuple(targets)

    def sections(self, raw: Mapping[str, Any], name: str) -> Dict[str, Mapping[str, Any]]:
        section = raw.get(name, {})
        if not isinstance(section, dict):
            self.problem(name, f"must be a table of [{name}.<name>] sections")
            return {}
        good: Dict[str, Mapping[str, Any]] = {}
        for key, value in section.items():
            if not isinstance(value, dict):
                self.problem(f"{name}.{key}", f"must be a table ([{name}.{key}])")
            else:
                good[key] = value
        return good


def validate(raw: Mapping[str, Any], path: str) -> Tuple[Optional[Config], List[Problem]]:
    check = _Checker(path)
    top = {k: v for k, v in raw.items() if k not in SECTIONS}
    values = check.table("", top, TOP_KEYS)
    docker = Docker(**check.subtable(raw, "docker", DOCKER_KEYS))
    inhibit = Inhibit(**check.subtable(raw, "inhibit", INHIBIT_KEYS))
    notify = check.notify(raw)

    cranes = {DEFAULT_CRANE: default_crane()}
    raw_cranes = check.sections(raw, "cranes")
    for name, section in raw_cranes.items():
        fields = check.table(f"cranes.{name}.", section, CRANE_KEYS)
        if "image" not in section:
            check.problem(f"cranes.{name}.image", "is required")
            continue
        if "image" in fields:
            cranes[name] = Crane(name=name, **fields)

    tides = {}
    raw_tides = check.sections(raw, "tides")
    if "tides" not in raw:
        raw_tides = {DEFAULT_TIDE: {}}
    for name, section in raw_tides.items():
        fields = check.table(f"tides.{name}.", section, TIDE_KEYS)
        tide = Tide(name=name, **fields)
        if tide.crane not in cranes and tide.crane not in raw_cranes:
            check.problem(f"tides.{name}.crane", f'no crane named "{tide.crane}"')
        tides[name] = tide

    listed = raw.get("notify")
    entries: List[Any] = listed if isinstance(listed, list) else []
    for index, entry in enumerate(entries):  # [[notify]] tides = [...] name tides
        named = entry.get("tides") if isinstance(entry, dict) else None
        for name in named if isinstance(named, list) else []:
            if isinstance(name, str) and name not in tides:
                check.problem(f"notify[{index}].tides", f'no tide named "{name}"')

    if check.problems:
        return None, check.problems
    return Config(
        path=path,
        tides=tides,
        cranes=cranes,
        docker=docker,
        inhibit=inhibit,
        notify=notify,
        **values,
    ), []
