"""Which volumes and bind mounts a tide backs up, and why each is in or out (pure).

- labels: what `salvage.tide.<tide>` labels name; an entry starting with "/" names a bind
  mount by its destination inside the labelled container, and only a bind mount that
  container has (a label writer never reaches any other host path);
- all (`select = "all"`): also every named volume on the host, used or not, and the bind
  mounts of compose services whose host path is under their project's directory (only
  directories: `./nginx.conf:/etc/nginx/nginx.conf` is left alone);
- never: salvage's own volumes; anonymous volumes unless `include_anonymous`; whatever an
  `exclude` pattern matches or `salvage.exclude=true` marks (on the volume, or on a
  container that mounts it). An exclusion wins over a label.

A bind mount is backed up under a name of its own, `bind_` and its host path with every
character but letters, digits, `.`, `_` and `-` made `_` (/srv/shop/config ->
bind_srv_shop_config): the same whichever container mounts it.
"""

from __future__ import annotations

import fnmatch
import posixpath
import re
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

from salvage.config.schema import Tide
from salvage.core import dumps, labels
from salvage.core.model import Bind, Container, Host, Problem, Volume

BIND_PREFIX = "bind_"


def bind_name(host_path: str) -> str:
    """The backup name of a bind mount: stable, and a valid volume name for a crane."""
    path = posixpath.normpath(host_path).strip("/") or "root"
    return BIND_PREFIX + re.sub(r"[^a-zA-Z0-9_.-]", "_", path)


@dataclass(frozen=True)
class Choice:
    """One volume or bind mount a tide considered: whether it is backed up, and why."""

    name: str
    selected: bool
    reason: str
    kind: str = "volume"  # or "bind"
    host_path: Optional[str] = None

    def as_dict(self) -> Dict[str, Any]:
        found = {"name": self.name, "kind": self.kind, "selected": self.selected}
        if self.host_path:
            found["host_path"] = self.host_path
        return {**found, "reason": self.reason}

    def __str__(self) -> str:
        where = f" ({self.host_path})" if self.host_path else ""
        return f"{'in ' if self.selected else 'out'} {self.name}{where}: {self.reason}"


@dataclass(frozen=True)
class BindSource:
    """What a crane mounts for a bind mount's backup, and what its meta.json says."""

    name: str
    host_path: str
    containers: Tuple[str, ...]  # the containers that mount it, by name


@dataclass
class Selection:
    choices: List[Choice]
    binds: Dict[str, BindSource]
    problems: List[Problem]

    @property
    def names(self) -> List[str]:
        return [c.name for c in self.choices if c.selected]


def own(volume: Volume) -> bool:
    """A volume salvage made for itself (a restore's scratch volume, any working volume):
    it carries salvage's labels (salvage.scratch, salvage.instance...), which users don't
    set on volumes but for salvage.exclude."""
    marks = [k for k in volume.labels if k.startswith("salvage.") and k != labels.EXCLUDE]
    return volume.name.startswith(labels.SCRATCH_PREFIX) or bool(marks)


def bind_users(host: Host, host_path: str) -> Tuple[Container, ...]:
    return tuple(c for c in host.containers if any(b.source == host_path for b in c.binds))


def mounts(host: Host) -> Dict[str, Tuple[str, ...]]:
    """container id -> the volumes and bind backup names it mounts (for grouping)."""
    return {c.id: c.volumes + tuple(bind_name(b.source) for b in c.binds) for c in host.containers}


def _under(path: str, directory: str) -> bool:
    path, directory = posixpath.normpath(path), posixpath.normpath(directory)
    return directory != "/" and (path == directory or path.startswith(directory + "/"))


def select(host: Host, tide: Tide) -> Selection:
    """The tide's choices (labelled first, then what `all` adds, each name once) and the
    label problems that fail a reference."""
    name, label = tide.name, labels.TIDE_PREFIX + tide.name
    found: Dict[str, Tuple[str, str, Optional[str]]] = {}  # name -> (reason, kind, host path)
    problems: List[Problem] = []
    for container in host.containers:
        refs, bad = labels.tide_refs(container)
        problems += [p for p in bad if p.where == labels.where(container, label)]
        for ref in refs.get(name, []):
            because = f'label {label} on container "{container.name}"'
            if ref.is_bind:
                bind, wrong = _own_bind(container, ref.text)
                if bind is None:
                    problems.append(Problem(labels.where(container, label), wrong or ""))
                else:
                    found.setdefault(bind_name(bind.source), (because, "bind", bind.source))
                continue
            volume, problem = labels.resolve(ref, host)
            if problem:
                problems.append(problem)
            elif volume is not None:
                found.setdefault(volume, (because, "volume", None))
    if tide.select == "all":
        for volume in sorted(host.volumes):
            found.setdefault(volume, ("select = all", "volume", None))
        for container in sorted(host.containers, key=lambda c: c.name):
            directory = container.working_dir
            if not (container.project and directory):
                continue
            for bind in container.binds:
                if _under(bind.source, directory) and bind.directory is not False:
                    why = f'select = all: under compose project "{container.project}"\'s directory'
                    found.setdefault(bind_name(bind.source), (why, "bind", bind.source))
    choices, binds = [], {}
    for item, (reason, kind, path) in found.items():
        out = _excluded(host, tide, item, kind, path, reason)
        if kind == "bind" and item in host.volumes:
            problems.append(
                Problem(
                    f"bind mount {path}",
                    f'its backup name "{item}" is also a volume\'s name: not backed up',
                )
            )
            continue
        choices.append(Choice(item, out is None, out or reason, kind, path))
        if kind == "bind" and out is None and path:
            users = tuple(sorted(c.name for c in bind_users(host, path)))
            binds[item] = BindSource(item, path, users)
    return Selection(choices, binds, problems)


def _own_bind(container: Container, text: str) -> Tuple[Optional[Bind], Optional[str]]:
    """The container's own bind mount at destination `text`, or why there is none."""
    wanted = posixpath.normpath(text)
    bind = next((b for b in container.binds if b.destination == wanted), None)
    if bind is None:
        return None, (
            f'"{text}" is not a bind mount of this container (only a container\'s'
            " own bind mounts can be backed up)"
        )
    if bind.directory is False:
        return None, f'"{text}" is a file ({bind.source}): only directories can be backed up'
    return bind, None


def _excluded(
    host: Host, tide: Tide, name: str, kind: str, path: Optional[str], reason: str
) -> Optional[str]:
    """Why a candidate is left out, or None."""
    volume = host.volumes.get(name) if kind == "volume" else None
    if volume is not None and own(volume):
        return "salvage's own volume"
    for pattern in tide.exclude:
        if fnmatch.fnmatchcase(name, pattern) or (path and fnmatch.fnmatchcase(path, pattern)):
            return f'excluded by pattern "{pattern}"'
    if volume is not None and labels.excluded(volume.labels):
        return f"excluded by label {labels.EXCLUDE} on the volume"
    users = bind_users(host, path) if kind == "bind" and path else host.consumers(name)
    for container in sorted(users, key=lambda c: c.name):
        if labels.excluded(container.labels):
            return f'excluded by label {labels.EXCLUDE} on container "{container.name}"'
    if volume is not None and volume.anonymous and not tide.include_anonymous:
        if reason == "select = all":  # a label that names one means it
            return "anonymous (include_anonymous = false)"
    if reason == "select = all":  # a database this tide dumps live: its files, cold, only
        for container in sorted(users, key=lambda c: c.name):  # when a label names them
            if tide.name in dumps.parse(container)[1]:
                return f'dumped instead (salvage.dump on container "{container.name}")'
    return None
