"""Turn a parsed TOML document into a Config, reporting every problem with its key path.

Every problem is one line, `<file>: <key.path>: <what is wrong>`; unknown keys are
problems too, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import difflib
import os
import re
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from salvage.config.schema import (
    DEFAULT_CRANE,
    DEFAULT_TIDE,
    GROUPINGS,
    INHIBIT_WHAT,
    NOTIFY_EVENTS,
    NOTIFY_KINDS,
    PULLS,
    Config,
    Crane,
    Docker,
    Inhibit,
    Notify,
    Tide,
    default_crane,
)
from salvage.model import Problem

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_VOLUME_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*")
_DURATION = re.compile(r"\s*(?:(\d+)d)?\s*(?:(\d+)h)?\s*(?:(\d+)m)?\s*(?:(\d+)s)?\s*")
MAX_DURATION = 7 * 24 * 3600.0  # a week: longer is a typo, and breaks socket timeouts
RESERVED_TARGETS = ("/salvage/volume", "/salvage/meta")


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("must be a non-empty string")
    return value.strip()


def _absolute_path(value: Any) -> str:
    if not isinstance(value, str) or not os.path.isabs(value):
        raise ValueError(f"must be an absolute path, not {value!r}")
    return value


def _positive_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"must be a whole number of at least 1, not {value!r}")
    return value


def _choice(options: Tuple[str, ...]) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value not in options:
            raise ValueError(f"{value!r} is not one of {', '.join(options)}")
        return value

    return check


def duration(value: Any, zero: bool = False) -> float:
    """Seconds, given as a number or as text like "90s", "10m", "1h30m", "1d"; 0 only
    where `zero` allows it."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value) if abs(value) <= MAX_DURATION else MAX_DURATION + 1
    elif isinstance(value, str) and (match := _DURATION.fullmatch(value)) and any(match.groups()):
        d, h, m, s = (min(int(part or 0), 10**9) for part in match.groups())
        seconds = float(((d * 24 + h) * 60 + m) * 60 + s)
    else:
        raise ValueError(f'{value!r} is not a duration (seconds, or text like "90s", "1h30m")')
    if zero and seconds == 0:
        return 0.0
    if not seconds > 0:  # also NaN
        raise ValueError("must be longer than zero" + (", or 0" if zero else ""))
    if seconds > MAX_DURATION:
        raise ValueError("must be at most a week (7d)")
    return seconds


def _env(value: Any) -> Dict[str, str]:
    if not isinstance(value, dict):
        raise ValueError("must be a table of NAME = value")
    env = {}
    for name, item in value.items():
        if not _ENV_NAME.fullmatch(name):
            raise ValueError(f'"{name}" is not an environment variable name')
        if name.startswith("SALVAGE_"):
            raise ValueError(f'"{name}": SALVAGE_* variables are set by salvage itself')
        if isinstance(item, bool):
            item = "true" if item else "false"
        if not isinstance(item, (str, int, float)):
            raise ValueError(f'"{name}" must be a string or a number')
        env[name] = str(item)
    return env


def _mounts(value: Any) -> Dict[str, str]:
    if not isinstance(value, dict):
        raise ValueError('must be a table of "volume or /host/path" = "/path/in/crane"')
    mounts = {}
    for source, target in value.items():
        if not (source.startswith("/") or _VOLUME_NAME.fullmatch(source)):
            raise ValueError(f'"{source}" is neither a volume name nor an absolute host path')
        if not isinstance(target, str) or not target.startswith("/"):
            raise ValueError(f'"{source}": the path in the crane must be absolute')
        if target.rstrip("/") in RESERVED_TARGETS:
            raise ValueError(f'"{source}": {target} is where salvage mounts the volume itself')
        mounts[source] = target
    return mounts


def _non_negative_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
        raise ValueError(f"must be a whole number from 0 to 100, not {value!r}")
    return value


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false, not {value!r}")
    return value


def _url(value: Any) -> str:
    if isinstance(value, str) and re.match(r"[a-z][a-z0-9+.-]*://\S", value):
        return value  # any scheme: an apprise target's; the others' are checked by kind
    raise ValueError("must be an http:// or https:// URL (apprise: one of its URLs)")


def _http_url(value: Any) -> str:
    if not isinstance(value, str) or not re.match(r"https?://[^\s/]+", value):
        raise ValueError("must be an http:// or https:// URL")
    return value


def _events(value: Any) -> Tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise ValueError(f"must be a list of events: {', '.join(NOTIFY_EVENTS)}")
    for event in value:
        if event not in NOTIFY_EVENTS:
            raise ValueError(f"{event!r} is not one of {', '.join(NOTIFY_EVENTS)}")
    return tuple(dict.fromkeys(value))


def _names(value: Any) -> Tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise ValueError("must be a list of tide names")
    return tuple(dict.fromkeys(value))


def _inhibit_what(value: Any) -> str:
    parts = value.split(":") if isinstance(value, str) else [None]
    for part in parts:
        if part not in INHIBIT_WHAT:
            raise ValueError(f"{value!r} is not a colon list of {', '.join(INHIBIT_WHAT)}")
    return value


def _secrets(value: Any) -> Dict[str, str]:
    if not isinstance(value, dict):
        raise ValueError('must be a table of NAME = "/host/file"')
    for name, path in value.items():
        if not _ENV_NAME.fullmatch(name) or name.startswith("SALVAGE_"):
            raise ValueError(f'"{name}" is not a secret name (letters, digits, _)')
        if not isinstance(path, str) or not os.path.isabs(path):
            raise ValueError(f'"{name}": must be the absolute path of a file on the host')
    return dict(value)


def _schedule(value: Any) -> str:
    # systemd-analyze checks the expression itself (salvage check); here only its shape.
    if not isinstance(value, str) or not value.strip() or "\n" in value:
        raise ValueError('must be a systemd calendar expression, such as "daily"')
    return value.strip()


def _fraction(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
        raise ValueError(f"must be a fraction between 0 and 1, such as 0.5, not {value!r}")
    return float(value)


TOP_KEYS: Dict[str, Callable[[Any], Any]] = {
    "machine": _text,
    "state_directory": _absolute_path,
    "lock_timeout": duration,
    "metrics_directory": _absolute_path,
}
DOCKER_KEYS: Dict[str, Callable[[Any], Any]] = {
    "timeout": duration,
    "retries": _non_negative_int,
}
INHIBIT_KEYS: Dict[str, Callable[[Any], Any]] = {"what": _inhibit_what, "required": _flag}
NOTIFY_KEYS: Dict[str, Callable[[Any], Any]] = {
    "kind": _choice(NOTIFY_KINDS),
    "url": _url,
    "events": _events,
    "name": _text,
    "template": _text,
    "timeout": duration,
    "retries": _non_negative_int,
    "tides": _names,
}
TIDE_KEYS: Dict[str, Callable[[Any], Any]] = {
    "crane": _text,
    "grouping": _choice(GROUPINGS),
    "max_concurrent": _positive_int,
    "crane_timeout": duration,
    "command_timeout": duration,
    "schedule": _schedule,
    "randomized_delay": lambda value: duration(value, zero=True),  # 0: no delay
    "persistent": _flag,
    "shrink_alert": _fraction,
    "verify_schedule": _schedule,
}
CRANE_KEYS: Dict[str, Callable[[Any], Any]] = {
    "image": _text,
    "pull": _choice(PULLS),
    "env": _env,
    "mounts": _mounts,
    "max_concurrent": _positive_int,
    "secrets": _secrets,
    "base": _text,
}
SECTIONS = ("tides", "cranes", "docker", "inhibit", "notify")


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
                from salvage.notify.apprise import check as apprise_check

                if why := apprise_check(fields["url"]):
                    self.problem(f"{key}.url", why)
                    fields.pop("url")
            elif "url" in fields:
                try:
                    _http_url(fields["url"])
                except ValueError as error:
                    self.problem(f"{key}.url", str(error))
                    fields.pop("url")
            missing = [k for k in ("kind", "url") if k not in entry]
            for k in missing:
                self.problem(f"{key}.{k}", "is required")
            if fields.get("template") and fields.get("kind") != "webhook":
                self.problem(f"{key}.template", "only a webhook has a template")
            elif fields.get("template"):
                from salvage.notify.webhook import check  # only when there is one to check

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
        good = {}
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

    entries = raw.get("notify") if isinstance(raw.get("notify"), list) else []
    for index, entry in enumerate(entries):  # [[notify]] tides = [...] name tides
        named = entry.get("tides") if isinstance(entry, dict) else None
        for name in named if isinstance(named, list) else []:
            if isinstance(name, str) and name not in tides:
                check.problem(f"notify[{index}].tides", f'no tide named "{name}"')

    if check.problems:
        return None, check.problems
    return Config(
        path=path, tides=tides, cranes=cranes, docker=docker, inhibit=inhibit, notify=notify,
        **values,
    ), []  # fmt: skip
