"""What salvage knows about a Docker host: containers, volumes, and problems found.

Plain data, built by `engine.discovery` from Docker's list calls and consumed by the pure
planning code, so grouping and planning can be tested without an engine.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Mapping, Optional, Tuple

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
COMPOSE_PROJECT = "com.docker.compose.project"
COMPOSE_SERVICE = "com.docker.compose.service"
COMPOSE_VOLUME = "com.docker.compose.volume"
COMPOSE_DEPENDS_ON = "com.docker.compose.depends_on"
COMPOSE_CONFIG_FILES = "com.docker.compose.project.config_files"
COMPOSE_WORKING_DIR = "com.docker.compose.project.working_dir"
# Set by the engine (Docker 23+) on the volumes it makes for a VOLUME or `-v /path` mount.
ANONYMOUS = "com.docker.volume.anonymous"
_ANONYMOUS_NAME = re.compile(r"[0-9a-f]{64}")
LIVE = ("running", "restarting")  # states a backup must stop or pause


@dataclass(frozen=True)
class Problem:
    """One thing wrong, said in one line: where it is, then what is wrong."""

    where: str
    message: str

    def __str__(self) -> str:
        # Names come from labels and TOML keys, which may hold newlines: keep it one line.
        return _CONTROL.sub(lambda m: repr(m.group())[1:-1], f"{self.where}: {self.message}")


@dataclass(frozen=True)
class Volume:
    name: str
    driver: str = "local"
    labels: Mapping[str, str] = field(default_factory=dict)
    options: Mapping[str, str] = field(default_factory=dict)
    created: str | None = None

    @property
    def project(self) -> str | None:
        return self.labels.get(COMPOSE_PROJECT)

    @property
    def compose_name(self) -> str | None:
        return self.labels.get(COMPOSE_VOLUME)

    @property
    def anonymous(self) -> bool:
        """Made by the engine for a mount that named no volume (older engines set no
        label: their anonymous volumes are known by their 64 hex digits)."""
        return ANONYMOUS in self.labels or bool(_ANONYMOUS_NAME.fullmatch(self.name))


@dataclass(frozen=True)
class Bind:
    """A container's bind mount: a host path seen at `destination` inside it."""

    source: str
    destination: str
    # Whether the host path is a directory, as salvage sees it; None: not visible from here.
    directory: Optional[bool] = None


@dataclass(frozen=True)
class Container:
    id: str
    name: str
    state: str  # Docker's own words: running, paused, exited, created, restarting, dead
    labels: Mapping[str, str] = field(default_factory=dict)
    volumes: Tuple[str, ...] = ()  # names of the named volumes it mounts
    binds: Tuple[Bind, ...] = ()  # its bind mounts
    auto_remove: bool = False  # started with --rm: a stop deletes it for good

    @property
    def live(self) -> bool:
        """Running, or between two runs of its restart policy: salvage changes only these."""
        return self.state in LIVE

    @property
    def project(self) -> str | None:
        return self.labels.get(COMPOSE_PROJECT)

    @property
    def service(self) -> str | None:
        return self.labels.get(COMPOSE_SERVICE)

    @property
    def working_dir(self) -> str | None:
        """Its compose project's directory, as compose recorded it."""
        return self.labels.get(COMPOSE_WORKING_DIR)

    @property
    def depends_on(self) -> Tuple[str, ...]:
        """Services this one depends on, from Compose v2's `service:condition:required,...`."""
        raw = self.labels.get(COMPOSE_DEPENDS_ON, "")
        return tuple(item.split(":", 1)[0] for item in raw.split(",") if item.split(":", 1)[0])

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class ComposeFiles:
    """What a compose project's files say of its services' dependencies: read only for a
    project whose containers carry no depends_on label (docker-compose 1.x)."""

    files: Tuple[str, ...]
    depends_on: Mapping[str, Tuple[str, ...]] = field(default_factory=dict)  # service -> its
    problem: str = ""  # why they say nothing (unreadable, malformed): the order is unknown


@dataclass(frozen=True)
class Host:
    """A snapshot of the engine: every container and every volume."""

    containers: Tuple[Container, ...] = ()
    volumes: Mapping[str, Volume] = field(default_factory=dict)
    compose_files: Mapping[str, ComposeFiles] = field(default_factory=dict)  # by project

    def consumers(self, volume: str) -> Tuple[Container, ...]:
        return tuple(c for c in self.containers if volume in c.volumes)
