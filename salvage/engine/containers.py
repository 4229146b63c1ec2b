"""Container state changes and commands inside containers, in Docker's own terms."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

from salvage.engine.client import Engine

DOCKER_STOP_TIMEOUT = 10  # what `docker stop` waits when a container sets no StopTimeout


@dataclass(frozen=True)
class Current:
    """A container as it is right now (inspected just before salvage acts on it)."""

    state: Optional[str]  # None: the container no longer exists
    stop_timeout: int = DOCKER_STOP_TIMEOUT


def current(engine: Engine, container_id: str) -> Current:
    from docker.errors import NotFound

    try:
        info = engine.api.inspect_container(container_id)
    except NotFound:
        return Current(None)
    timeout = (info.get("Config") or {}).get("StopTimeout")
    return Current(info["State"]["Status"], DOCKER_STOP_TIMEOUT if timeout is None else timeout)


def stop(engine: Engine, container_id: str, timeout: int) -> None:
    # docker-py extends the HTTP timeout by the stop timeout itself.
    engine.api.stop(container_id, timeout=timeout)


def start(engine: Engine, container_id: str) -> None:
    engine.api.start(container_id)


def pause(engine: Engine, container_id: str) -> None:
    engine.api.pause(container_id)


def unpause(engine: Engine, container_id: str) -> None:
    engine.api.unpause(container_id)


def execute(
    engine: Engine, container_id: str, command: str, user: Optional[str], timeout: float
) -> Tuple[int, str]:
    """Run `command` through /bin/sh inside the container; (exit code, output)."""
    api = engine.waiting_client(timeout)
    try:
        exec_id = api.exec_create(container_id, ["/bin/sh", "-c", command], user=user or "")
        output = api.exec_start(exec_id)
        code = api.exec_inspect(exec_id).get("ExitCode")
    finally:
        api.close()
    text = output.decode("utf-8", "replace") if isinstance(output, bytes) else str(output)
    return (code if code is not None else -1), text
