"""The shape of salvage.toml, with its defaults. See docs/configuration.md."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from typing import Mapping

DEFAULT_PATH = "/etc/salvage/salvage.toml"
DEFAULT_STATE_DIRECTORY = "/var/lib/salvage"
GROUPINGS = ("individual", "smart", "project")
PULLS = ("always", "missing", "never")

# The reference tar crane (cranes/tar): always defined, so that a host with no
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


@dataclass(frozen=True)
class Tide:
    name: str
    crane: str = DEFAULT_CRANE
    grouping: str = "smart"
    max_concurrent: int = 1
    crane_timeout: float = 6 * 3600.0
    command_timeout: float = 600.0


@dataclass(frozen=True)
class Config:
    path: str
    machine: str = field(default_factory=socket.gethostname)
    state_directory: str = DEFAULT_STATE_DIRECTORY
    tides: Mapping[str, Tide] = field(default_factory=dict)
    cranes: Mapping[str, Crane] = field(default_factory=dict)

    def crane_of(self, tide: Tide) -> Crane:
        return self.cranes[tide.crane]


def default_crane() -> Crane:
    return Crane(DEFAULT_CRANE, DEFAULT_CRANE_IMAGE, mounts=dict(DEFAULT_CRANE_MOUNTS))
