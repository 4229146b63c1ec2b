"""Service dependencies of docker-compose 1.x projects, read from their compose files.

Compose v2 records each container's depends_on in a label; docker-compose 1.29 (Debian
12's) does not, but names the files it read (`com.docker.compose.project.config_files`,
relative to the directory it ran in, which `...project.working_dir` gives). Those files
are untrusted input: one that is missing, unreadable or malformed says nothing (its
problem is one line) and never fails a run. PyYAML is imported only when needed.
"""

from __future__ import annotations

import os
import stat
from typing import Dict, Iterable, List, Mapping, Tuple

from salvage.core.model import (
    COMPOSE_CONFIG_FILES,
    COMPOSE_DEPENDS_ON,
    COMPOSE_WORKING_DIR,
    ComposeFiles,
    Container,
)

MAX_BYTES = 1 << 20  # a compose file is a few kB; anything bigger is not read


def for_containers(containers: Iterable[Container]) -> Dict[str, ComposeFiles]:
    """Per compose project none of whose containers has a depends_on label, what its
    files say (read once per project)."""
    containers = sorted(containers, key=lambda c: c.name)
    labelled = {c.project for c in containers if COMPOSE_DEPENDS_ON in c.labels}
    found: Dict[str, ComposeFiles] = {}
    for container in containers:
        project = container.project
        if project and container.service and project not in labelled | set(found):
            found[project] = read(container.labels)
    return found


def paths(labels: Mapping[str, str]) -> List[str]:
    """The files, absolute. docker-compose 1.x records them as given (relative to the
    directory it ran in) and the project's directory, which is the first file's."""
    names = [n for n in labels.get(COMPOSE_CONFIG_FILES, "").split(",") if n]
    workdir = os.path.normpath(labels.get(COMPOSE_WORKING_DIR) or ".")
    if not os.path.isabs(workdir) and not all(os.path.isabs(n) for n in names):
        return []
    ran_in = workdir
    first = os.path.dirname(os.path.normpath(names[0])) if names else ""
    if first and not os.path.isabs(first) and ".." not in first.split(os.sep):
        if workdir.endswith(os.sep + first):  # `-f sub/docker-compose.yml`
            ran_in = workdir[: -len(first) - 1] or os.sep
    return [os.path.normpath(os.path.join(ran_in, n)) for n in names]


def read(labels: Mapping[str, str]) -> ComposeFiles:
    files = tuple(paths(labels))
    if not files:
        return ComposeFiles((), problem=f"no readable {COMPOSE_CONFIG_FILES} label")
    try:
        import yaml
    except ImportError:
        return ComposeFiles(files, problem="python3-yaml is not installed to read " + files[0])
    depends: Dict[str, Tuple[str, ...]] = {}
    for path in files:
        try:
            data = _read(path)
            if len(data) > MAX_BYTES:
                raise ValueError(f"larger than {MAX_BYTES // 1024} kB")
            document = yaml.safe_load(data)
        except OSError as error:
            return ComposeFiles(files, problem=f"cannot read {path}: {error.strerror}")
        except yaml.YAMLError as error:
            line = getattr(getattr(error, "problem_mark", None), "line", None)
            where = f" (line {line + 1})" if line is not None else ""
            return ComposeFiles(files, problem=f"{path}: not YAML{where}")
        except (ValueError, RecursionError) as error:
            return ComposeFiles(files, problem=f"{path}: {error}")
        services, problem = _services(document)
        if problem:
            return ComposeFiles(files, problem=f"{path}: {problem}")
        for name, service in services.items():  # an override file adds to the base file's
            depends[name] = tuple(dict.fromkeys(depends.get(name, ()) + _depends(service)))
    return ComposeFiles(files, depends)


def _read(path: str) -> bytes:
    """A regular file's first bytes: a label may name a FIFO or a device, never waited on."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ValueError("not a regular file")
        with os.fdopen(fd, "rb", closefd=False) as stream:
            return stream.read(MAX_BYTES + 1)
    finally:
        os.close(fd)


def _services(document) -> Tuple[dict, str]:
    if document is None:
        return {}, ""  # an empty override file
    if not isinstance(document, dict):
        return {}, "not a compose file (no mapping at the top)"
    services = document.get("services", {} if "version" in document else document)
    if not isinstance(services, dict):
        return {}, '"services" is not a mapping'
    return {str(k): v for k, v in services.items() if isinstance(v, dict)}, ""


def _depends(service: dict) -> Tuple[str, ...]:
    """What Compose starts before this service: depends_on (a list, or a mapping of
    service -> condition), links ("db" or "db:alias"), network_mode "service:db"."""
    found: List[str] = []
    depends_on = service.get("depends_on")
    if isinstance(depends_on, (list, dict)):
        found += [str(name) for name in depends_on if isinstance(name, (str, int))]
    links = service.get("links")
    if isinstance(links, list):
        found += [str(link).split(":", 1)[0] for link in links if isinstance(link, str)]
    network = service.get("network_mode")
    if isinstance(network, str) and network.startswith("service:"):
        found.append(network.split(":", 1)[1])
    return tuple(dict.fromkeys(name for name in found if name))
