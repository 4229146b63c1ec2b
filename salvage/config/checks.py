"""The checks of configuration values. Each turns a TOML value into the value salvage uses,
or raises ValueError with what is wrong (one line; the caller names the key), and says the
same in JSON Schema for editors (`salvage config schema`) and how a default is written."""

from __future__ import annotations

import os
import re
from typing import Any, Callable, Dict, Tuple

from salvage.core.grouping import MODES as GROUPINGS
from salvage.core.labels import VOLUME_NAME

# One module each in salvage.report.notify, named after the kind ("-" as "_"); declared here
# so that reading a configuration needs nothing of report/.
NOTIFY_KINDS = ("discord", "ntfy", "webhook", "healthchecks", "uptime-kuma", "apprise")

PULLS = ("always", "missing", "never")
SELECTS = ("labels", "all")
STAGINGS = ("auto", "always", "never")  # salvage.crane.staging.MODES
NOTIFY_EVENTS = (
    "tide.start",
    "tide.success",
    "tide.failure",
    "volume.success",
    "volume.failure",
    "volume.shrunk",
    "verify.failure",
)
INHIBIT_WHAT = (
    "shutdown",
    "sleep",
    "idle",
    "handle-power-key",
    "handle-suspend-key",
    "handle-hibernate-key",
    "handle-lid-switch",
)
MAX_DURATION = 7 * 24 * 3600.0  # a week: longer is a typo, and breaks socket timeouts
RESERVED_TARGETS = ("/salvage/volume", "/salvage/meta")

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_VOLUME_NAME = re.compile(VOLUME_NAME)
_DURATION = re.compile(r"\s*(?:(\d+)d)?\s*(?:(\d+)h)?\s*(?:(\d+)m)?\s*(?:(\d+)s)?\s*")


class Check:
    """A check: called with the TOML value; `schema` is its JSON Schema; `written` turns a
    default back into what one writes in the file."""

    def __init__(
        self,
        check: Callable[[Any], Any],
        schema: Dict[str, Any],
        written: Callable[[Any], Any] = lambda value: value,
    ) -> None:
        self.check, self.schema, self.written = check, schema, written

    def __call__(self, value: Any) -> Any:
        return self.check(value)


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


def choice(options: Tuple[str, ...]) -> Check:
    def check(value: Any) -> str:
        if value not in options:
            raise ValueError(f"{value!r} is not one of {', '.join(options)}")
        return value

    return Check(check, {"enum": list(options)})


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


def duration_text(seconds: float) -> Any:
    """A duration as one writes it: "1h30m"; 0 stays a number."""
    if not seconds:
        return 0
    rest, text = int(seconds), ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if rest >= size:
            text += f"{rest // size}{unit}"
            rest %= size
    return text


def _duration_schema(minimum: str) -> Dict[str, Any]:
    return {
        "anyOf": [
            {"type": "number", minimum: 0, "maximum": MAX_DURATION},
            {"type": "string", "pattern": r"^\s*(\d+d)?\s*(\d+h)?\s*(\d+m)?\s*(\d+s)?\s*$"},
        ]
    }


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


def http_url(value: Any) -> str:
    if not isinstance(value, str) or not re.match(r"https?://[^\s/]+", value):
        raise ValueError("must be an http:// or https:// URL")
    return value


def _fraction(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
        raise ValueError(f"must be a fraction between 0 and 1, such as 0.5, not {value!r}")
    return float(value)


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


def _patterns(value: Any) -> Tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ValueError('must be a list of name patterns, such as ["*_cache", "tmp-*"]')
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


_NAME = "^[A-Za-z_][A-Za-z0-9_]*$"
_STRING_TABLE = {"type": "object", "additionalProperties": {"type": "string"}}
TEXT = Check(_text, {"type": "string", "pattern": r"\S"})
ABSOLUTE_PATH = Check(_absolute_path, {"type": "string", "pattern": "^/"})
POSITIVE_INT = Check(_positive_int, {"type": "integer", "minimum": 1})
COUNT = Check(_non_negative_int, {"type": "integer", "minimum": 0, "maximum": 100})
FLAG = Check(_flag, {"type": "boolean"})
DURATION = Check(duration, _duration_schema("exclusiveMinimum"), duration_text)
# 0: none at all (a timer's delay)
DURATION_OR_ZERO = Check(
    lambda value: duration(value, zero=True), _duration_schema("minimum"), duration_text
)
SCHEDULE = Check(_schedule, {"type": "string", "pattern": r"\S"})
URL = Check(_url, {"type": "string", "pattern": r"^[a-z][a-z0-9+.-]*://\S"})
FRACTION = Check(_fraction, {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1})
EVENTS = Check(
    _events,
    {"type": "array", "minItems": 1, "items": {"enum": list(NOTIFY_EVENTS)}},
    list,
)
TIDE_NAMES = Check(_names, {"type": "array", "minItems": 1, "items": {"type": "string"}}, list)
PATTERNS = Check(_patterns, {"type": "array", "items": {"type": "string", "minLength": 1}}, list)
INHIBIT = Check(
    _inhibit_what,
    {"type": "string", "pattern": f"^({'|'.join(INHIBIT_WHAT)})(:({'|'.join(INHIBIT_WHAT)}))*$"},
)
ENV = Check(
    _env,
    {
        "type": "object",
        "propertyNames": {"pattern": _NAME, "not": {"pattern": "^SALVAGE_"}},
        "additionalProperties": {"type": ["string", "number", "boolean"]},
    },
    dict,
)
MOUNTS = Check(
    _mounts,
    {
        "type": "object",
        "propertyNames": {"pattern": f"^(/.*|{VOLUME_NAME})$"},
        "additionalProperties": {"type": "string", "pattern": "^/"},
    },
    dict,
)
SECRETS = Check(
    _secrets,
    {
        "type": "object",
        "propertyNames": {"pattern": _NAME, "not": {"pattern": "^SALVAGE_"}},
        "additionalProperties": {"type": "string", "pattern": "^/"},
    },
    dict,
)
GROUPING = choice(GROUPINGS)
PULL = choice(PULLS)
SELECT = choice(SELECTS)
STAGING = choice(STAGINGS)
KIND = choice(NOTIFY_KINDS)
