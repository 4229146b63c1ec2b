"""The shape of salvage.toml: each key is a dataclass field carrying its type, its default,
its check and its description (`key`). validate.py, `salvage config schema` and the
generated parts of docs/configuration.md and examples/salvage.toml all read them from here
(`python -m salvage.config.docs` regenerates those)."""

from __future__ import annotations

import dataclasses
import socket
from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional, Tuple, Type

from salvage.config import checks as c
from salvage.config.checks import GROUPINGS, INHIBIT_WHAT, NOTIFY_EVENTS, PULLS, SELECTS

DEFAULT_PATH = "/etc/salvage/salvage.toml"
DEFAULT_STATE_DIRECTORY = "/var/lib/salvage"
SECRETS_DIR = "/run/secrets"  # where a crane finds its secret files

# The reference tar crane (salvage/crane/images/tar): always defined, so that a host with no
# configuration file, or one that only defines tides, backs up to /var/backups/salvage.
DEFAULT_CRANE = "tar"
DEFAULT_CRANE_IMAGE = "salvage/crane-tar:latest"
DEFAULT_CRANE_MOUNTS = {"/var/backups/salvage": "/salvage/target"}
DEFAULT_TIDE = "daily"


@dataclass(frozen=True)
class Key:
    """What a field says about itself: `doc` for docs/configuration.md and editors; `hint`
    (short) for the comment in examples/salvage.toml, which shows only keys with one;
    `example` a value shown there, commented out, instead of the default; `shown` the
    default column when the default is not a plain value."""

    check: c.Check
    doc: str
    hint: Optional[str] = None
    example: Any = None
    shown: Optional[str] = None


def key(check: c.Check, doc: str, **more: Any) -> Dict[str, Key]:
    return {"key": Key(check, doc, **more)}


def either(words: Tuple[str, ...]) -> str:
    """`a`, `b` or `c`"""
    return " or ".join([", ".join(f"`{w}`" for w in words[:-1]), f"`{words[-1]}`"])


def keys(cls: Type[Any]) -> Dict[str, Key]:
    """The keys of a table, in the order of the dataclass: its fields that are keys."""
    return {f.name: f.metadata["key"] for f in dataclasses.fields(cls) if "key" in f.metadata}


def default(cls: Type[Any], name: str) -> Any:
    """A field's default (the `dataclasses.MISSING` sentinel when it has none)."""
    (f,) = [f for f in dataclasses.fields(cls) if f.name == name]
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return f.default


@dataclass(frozen=True)
class Crane:
    name: str
    image: str = field(
        metadata=key(
            c.TEXT,
            "the crane's image",
            hint="built on first use from its Dockerfile",
            shown="required",
        )
    )
    pull: str = field(
        default="missing",
        metadata=key(
            c.PULL,
            "`always` (pull before each run), `missing` (pull if not on the host), `never`",
            hint=" | ".join(PULLS),
        ),
    )
    env: Mapping[str, str] = field(
        default_factory=dict,
        metadata=key(c.ENV, "environment for the crane; `SALVAGE_*` names are reserved"),
    )
    # volume name or absolute host path -> absolute path inside the crane
    mounts: Mapping[str, str] = field(
        default_factory=dict,
        metadata=key(
            c.MOUNTS,
            '`"volume name" or "/host/path"` = `"/path/in/crane"`, read-write. A missing host'
            " path is created by Docker, as with `docker run -v`. `/salvage/volume` and"
            " `/salvage/meta` are salvage's.",
            hint="host path -> crane path",
        ),
    )
    max_concurrent: int = field(
        default=1,
        metadata=key(c.POSITIVE_INT, "at most this many of this crane at once", hint=""),
    )
    # NAME -> a host file, mounted read-only at /run/secrets/NAME, with NAME_FILE in env
    secrets: Mapping[str, str] = field(
        default_factory=dict,
        metadata=key(
            c.SECRETS,
            '`NAME = "/host/file"`: the file is mounted read-only at `/run/secrets/NAME` and'
            " `NAME_FILE` is set to that path (restic, most official images read `*_FILE`)."
            " The value never appears in the environment, logs, plans or metadata. A missing"
            " file fails the tide before any container is touched.",
        ),
    )
    base: Optional[str] = field(  # BASE when salvage builds a reference crane's image
        default=None,
        metadata=key(
            c.TEXT,
            "for a reference crane (`salvage/crane-tar`, `salvage/crane-restic`) whose image"
            " is missing: salvage builds it from the shipped Dockerfile on first use, with"
            " this `BASE` image (a local one works offline)",
            shown="the Dockerfile's",
        ),
    )


@dataclass(frozen=True)
class Tide:
    name: str
    crane: str = field(
        default=DEFAULT_CRANE,
        metadata=key(
            c.TEXT,
            "the crane that backs up this tide's volumes",
            hint="which crane backs up the volumes",
        ),
    )
    grouping: str = field(
        default="smart",
        metadata=key(
            c.GROUPING,
            f"{either(GROUPINGS)} (see the README)",
            hint=" | ".join(GROUPINGS),
        ),
    )
    max_concurrent: int = field(
        default=1,
        metadata=key(
            c.POSITIVE_INT,
            "cranes running at once within a group",
            hint="cranes at once within a group",
        ),
    )
    crane_timeout: float = field(
        default=6 * 3600.0,
        metadata=key(
            c.DURATION,
            "a crane still running after this is killed and its volume failed",
            hint="a crane running longer is killed, its volume failed",
        ),
    )
    command_timeout: float = field(
        default=600.0,
        metadata=key(
            c.DURATION,
            "limit for each `salvage.command.pre`/`post`",
            hint="for salvage.command.pre/post",
        ),
    )
    schedule: str = field(  # a systemd OnCalendar expression
        default="daily",
        metadata=key(
            c.SCHEDULE,
            "when its timer starts it: a systemd calendar expression (`man systemd.time`),"
            " checked by `salvage check` ([systemd.md](systemd.md))",
            hint="a systemd calendar expression: every day at 00:00",
        ),
    )
    randomized_delay: float = field(
        default=0.0,
        metadata=key(
            c.DURATION_OR_ZERO,
            "the timer waits up to this long more (`RandomizedDelaySec=`); `0` for no delay",
            hint="the timer waits up to this long more",
            example="30m",
        ),
    )
    persistent: bool = field(  # catch up on a run missed while the host was off
        default=True,
        metadata=key(
            c.FLAG,
            "a run missed while the host was off happens at the next boot (`Persistent=`)",
            hint="a run missed while the host was off happens at boot",
        ),
    )
    shrink_alert: Optional[float] = field(
        default=None,
        metadata=key(
            c.FRACTION,
            "a fraction (e.g. `0.5`): a good backup whose size (the bytes its crane read, else"
            " those it stored) is below this fraction of the volume's previous good backup is a"
            " warning in the log, a `volume.shrunk` notification, `SHRUNK` in `status` and"
            " `salvage_volume_last_shrunk` 1",
            hint="warn when a backup shrinks below this fraction of the last good one",
            example="0.5",
            shown="none",
        ),
    )
    verify_schedule: Optional[str] = field(  # `salvage verify` by a timer of its own
        default=None,
        metadata=key(
            c.SCHEDULE,
            "a systemd calendar expression: `salvage verify --tide <tide>` then runs on a timer"
            " of its own, `salvage-verify@<tide>.timer` (made by the generator, with the tide's"
            " `randomized_delay` and `persistent`)",
            hint="salvage verify by its own timer: a systemd calendar expression",
            example="weekly",
            shown="none",
        ),
    )
    select: str = field(
        default="labels",
        metadata=key(
            c.SELECT,
            "`labels`: the volumes and bind mounts named by `salvage.tide.<tide>` labels; `all`:"
            " those, every named volume on the host (used or not) and the bind mounts of compose"
            " services under their project's directory ([README](../README.md#selection))",
            hint=" | ".join(SELECTS),
        ),
    )
    include_anonymous: bool = field(
        default=False,
        metadata=key(
            c.FLAG,
            'with `select = "all"`, anonymous volumes too (those the engine made for a'
            " mount that named no volume)",
        ),
    )
    exclude: Tuple[str, ...] = field(
        default=(),
        metadata=key(
            c.PATTERNS,
            "volume names never backed up in this tide, as shell patterns (`*`, `?`, `[..]`);"
            " a bind mount matches by its backup name or its host path. Wins over labels",
            hint="never back up these volumes (shell patterns)",
            example=["*_cache"],
            shown="none",
        ),
    )
    staging: str = field(
        default="auto",
        metadata=key(
            c.STAGING,
            "`auto`: while a group's containers are down, copy each volume to a stage volume"
            " (reflinks where the file system has them; without, and with rsync in the crane"
            " image, only what changed since a live copy made before they went down), bring"
            " the containers back, then back"
            " up the stage; the classic way when the stage does not fit. `always`: a volume"
            " that cannot be staged fails. `never`: containers stay down for the whole backup"
            " (README, Staging)",
            hint="auto | always | never: containers down only for a local copy",
        ),
    )


@dataclass(frozen=True)
class Docker:
    """The connection to the Docker engine."""

    timeout: float = field(  # for each API call that should answer at once
        default=60.0,
        metadata=key(
            c.DURATION, "for each Docker API call that should answer at once (not a crane's run)"
        ),
    )
    retries: int = field(  # reconnections when the engine goes away mid-run
        default=5,
        metadata=key(
            c.COUNT,
            "when the engine cannot be reached mid-run, try again this many times, waiting"
            " 0.5 s, 1 s, 2 s ... (at most 10 s) in between",
        ),
    )


@dataclass(frozen=True)
class Inhibit:
    """The logind inhibitor lock held while containers are down."""

    what: str = field(
        default="shutdown:sleep",
        metadata=key(c.INHIBIT, "a colon list of " + ", ".join(f"`{w}`" for w in INHIBIT_WHAT)),
    )
    required: bool = field(  # without it: warn and carry on
        default=False,
        metadata=key(
            c.FLAG,
            "`true`: when the lock cannot be had (no system bus, no logind, access denied), no"
            " group is touched; otherwise the run goes on, with a warning under systemd and a"
            " notice elsewhere",
        ),
    )


@dataclass(frozen=True)
class Notify:
    """One notification target."""

    kind: str = field(
        metadata=key(c.KIND, either(c.NOTIFY_KINDS), shown="required"),
    )
    url: str = field(
        metadata=key(
            c.URL,
            "`http://` or `https://` (apprise: any URL Apprise knows); it is never logged (it"
            " often holds a token). A `user:password@` in it is sent as HTTP basic auth"
            " (`Authorization: Basic`), never as part of the URL, and no log, name or error"
            " shows it",
            shown="required",
        )
    )
    events: Tuple[str, ...] = field(
        default=("tide.failure", "volume.failure", "verify.failure"),
        metadata=key(
            c.EVENTS,
            "any of " + ", ".join(f"`{e}`" for e in NOTIFY_EVENTS),
            shown='`["tide.failure", "volume.failure", "verify.failure"]` (healthchecks: the'
            " three `tide.*`; uptime-kuma: `tide.success`, `tide.failure`)",
        ),
    )
    tides: Tuple[str, ...] = field(  # only these tides' events; empty: every tide
        default=(),
        metadata=key(
            c.TIDE_NAMES,
            "a list of tide names: only their events go to this target (e.g. one check per tide)",
            shown="every tide",
        ),
    )
    name: str = field(
        default="", metadata=key(c.TEXT, "how warnings name the target", shown="kind and host")
    )
    template: Optional[str] = field(  # webhook: the body, a template over the run's data
        default=None, metadata=key(c.TEXT, "webhook only: the body, see below")
    )
    timeout: float = field(
        default=10.0,
        metadata=key(
            c.DURATION,
            "for each try, whole: a server that answers slowly is cut off when it is up",
        ),
    )
    retries: int = field(
        default=2,
        metadata=key(
            c.COUNT,
            "more tries after a failed one (a connection error, a timeout, HTTP 5xx or 429),"
            " 1 s, then 2 s ... apart; another HTTP error is not tried again",
        ),
    )


@dataclass(frozen=True)
class Config:
    path: str
    machine: str = field(
        default_factory=socket.gethostname,
        metadata=key(
            c.TEXT,
            "given to cranes as `SALVAGE_MACHINE_NAME`",
            hint="Name of this machine, given to cranes (archives go under <target>/<machine>/)",
            example="homeserver",
            shown="the host name",
        ),
    )
    state_directory: str = field(
        default=DEFAULT_STATE_DIRECTORY,
        metadata=key(
            c.ABSOLUTE_PATH,
            "absolute path where salvage keeps its state (the record, the lock, the run history"
            " `history.sqlite`). Under systemd, another one than the default is made writable"
            " for the services by the generator (`ReadWritePaths=`, [systemd.md](systemd.md))",
            hint="Where salvage keeps its state (run history, record, lock)",
        ),
    )
    lock_timeout: float = field(  # how long a run waits for another one to end
        default=3600.0,
        metadata=key(
            c.DURATION,
            "how long a run waits for another salvage to finish",
            hint="How long a run waits for another salvage to finish",
        ),
    )
    metrics_directory: Optional[str] = field(  # node_exporter's textfile collector directory
        default=None,
        metadata=key(
            c.ABSOLUTE_PATH,
            "absolute path of node_exporter's textfile collector directory: each run rewrites"
            " `salvage.prom` there (see the README). The directory must exist; under systemd"
            " the generator makes it writable for the services (`ReadWritePaths=`).",
            hint="node_exporter's textfile collector directory:"
            " each run rewrites salvage.prom there",
            example="/var/lib/prometheus/node-exporter",
            shown="none",
        ),
    )
    tides: Mapping[str, Tide] = field(default_factory=dict)
    cranes: Mapping[str, Crane] = field(default_factory=dict)
    docker: Docker = field(default_factory=Docker)
    inhibit: Inhibit = field(default_factory=Inhibit)
    notify: Tuple[Notify, ...] = ()
    found: bool = True  # False: no file at the default path, only the built-in defaults

    def crane_of(self, tide: Tide) -> Crane:
        return self.cranes[tide.crane]


# The file's tables: name -> the dataclass of each (one per [name], [name.<x>], [[name]]).
SECTIONS: Dict[str, Type[Any]] = {
    "tides": Tide,
    "cranes": Crane,
    "docker": Docker,
    "inhibit": Inhibit,
    "notify": Notify,
}


def default_crane() -> Crane:
    return Crane(DEFAULT_CRANE, DEFAULT_CRANE_IMAGE, mounts=dict(DEFAULT_CRANE_MOUNTS))
