"""The shape of salvage.toml, with its defaults. See docs/configuration.md."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from typing import Mapping, Optional, Tuple

DEFAULT_PATH = "/etc/salvage/salvage.toml"
DEFAULT_STATE_DIRECTORY = "/var/lib/salvage"
GROUPINGS = ("individual", "smart", "project")
PULLS = ("always", "missing", "never")
NOTIFY_KINDS = ("discord", "ntfy", "webhook", "healthchecks", "uptime-kuma", "apprise")
NOTIFY_EVENTS = ("tide.start", "tide.success", "tide.failure", "volume.success", "volume.failure",
                 "volume.shrunk", "verify.failure")  # fmt: skip
INHIBIT_WHAT = ("shutdown", "sleep", "idle", "handle-power-key", "handle-suspend-key",
                "handle-hibernate-key", "handle-lid-switch")  # fmt: skip
SECRETS_DIR = "/run/secrets"  # where a crane finds its secret files

# The reference tar crane (salvage/cranes/tar): always defined, so that a host with no
# configuration file, or one that only defines tides, backs up to /var/backups/salvage.
DEFAULT_CRANE = "tar"
DEFAULT_CRANE_IMAGE = "salvage/crane-tar:latest"
DEFAULT_CRANE_MOUNTS = {"/var/backups/salvage": "/salvage/target"}
DEFAULT_TIDE = "daily"


@dataclass(frozen=True)
class Crane:
    name: str
    image: str
    pull: str = "missing"
    env: Mapping[str, str] = field(default_factory=dict)
    # volume name or absolute host path -> absolute path inside the crane
    mounts: Mapping[str, str] = field(default_factory=dict)
    max_concurrent: int = 1
    # NAME -> a host file, mounted read-only at /run/secrets/NAME, with NAME_FILE in env
    secrets: Mapping[str, str] = field(default_factory=dict)
    base: Optional[str] = None  # BASE when salvage builds a reference crane's image


@dataclass(frozen=True)
class Tide:
    name: str
    crane: str = DEFAULT_CRANE
    grouping: str = "smart"
    max_concurrent: int = 1
    crane_timeout: float = 6 * 3600.0
    command_timeout: float = 600.0
    schedule: str = "daily"  # a systemd OnCalendar expression
    randomized_delay: float = 0.0
    persistent: bool = True  # catch up on a run missed while the host was off
    # Warn when a backup is below this fraction of the volume's previous good one (0.5).
    shrink_alert: Optional[float] = None
    verify_schedule: Optional[str] = None  # `salvage verify` by a timer of its own


@dataclass(frozen=True)
class Docker:
    """The connection to the Docker engine."""

    timeout: float = 60.0  # for each API call that should answer at once
    retries: int = 5  # reconnections when the engine goes away mid-run


@dataclass(frozen=True)
class Inhibit:
    """The logind inhibitor lock held while containers are down."""

    what: str = "shutdown:sleep"
    required: bool = False  # without it: warn and carry on


@dataclass(frozen=True)
class Notify:
    """One notification target."""

    kind: str
    url: str
    events: Tuple[str, ...] = ("tide.failure", "volume.failure", "verify.failure")
    name: str = ""
    template: Optional[str] = None  # webhook: the body, a template over the run's data
    timeout: float = 10.0
    retries: int = 2
    tides: Tuple[str, ...] = ()  # only these tides' events; empty: every tide


@dataclass(frozen=True)
class Config:
    path: str
    machine: str = field(default_factory=socket.gethostname)
    state_directory: str = DEFAULT_STATE_DIRECTORY
    tides: Mapping[str, Tide] = field(default_factory=dict)
    cranes: Mapping[str, Crane] = field(default_factory=dict)
    lock_timeout: float = 3600.0  # how long a run waits for another one to end
    metrics_directory: Optional[str] = None  # node_exporter's textfile collector directory
    docker: Docker = field(default_factory=Docker)
    inhibit: Inhibit = field(default_factory=Inhibit)
    notify: Tuple[Notify, ...] = ()
    found: bool = True  # False: no file at the default path, only the built-in defaults

    def crane_of(self, tide: Tide) -> Crane:
        return self.cranes[tide.crane]


def default_crane() -> Crane:
    return Crane(DEFAULT_CRANE, DEFAULT_CRANE_IMAGE, mounts=dict(DEFAULT_CRANE_MOUNTS))
