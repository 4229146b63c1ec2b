"""Container state changes and commands inside containers, in Docker's own terms."""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass
from typing import Any, Optional, Tuple

from salvage.engine.client import Engine, EngineError
from salvage.errors import SalvageError

DOCKER_STOP_TIMEOUT = 10  # what `docker stop` waits when a container sets no StopTimeout


@dataclass(frozen=True)
class Current:
    """A container as it is right now (inspected just before salvage acts on it)."""

    state: Optional[str]  # None: the container no longer exists
    stop_timeout: int = DOCKER_STOP_TIMEOUT
    started_at: str = ""  # State.StartedAt, the engine's clock


def inspect(engine: Engine, container_id: str) -> Optional[dict]:
    """Docker's inspect answer, or None when the container no longer exists."""
    from docker.errors import NotFound

    try:
        return engine.api.inspect_container(container_id)
    except NotFound:
        return None


def auto_remove(engine: Engine, container_id: str) -> bool:
    """Started with `--rm`: stopping it makes the engine delete it."""
    info = inspect(engine, container_id) or {}
    return bool((info.get("HostConfig") or {}).get("AutoRemove"))


def current(engine: Engine, container_id: str) -> Current:
    info = inspect(engine, container_id)
    if info is None:
        return Current(None)
    timeout = (info.get("Config") or {}).get("StopTimeout")
    return Current(
        info["State"]["Status"],
        DOCKER_STOP_TIMEOUT if timeout is None else timeout,
        info["State"].get("StartedAt") or "",
    )


def stop(engine: Engine, container_id: str, timeout: int) -> None:
    # docker-py extends the HTTP timeout by the stop timeout itself.
    engine.api.stop(container_id, timeout=timeout)


def start(engine: Engine, container_id: str) -> None:
    engine.api.start(container_id)


def pause(engine: Engine, container_id: str) -> None:
    engine.api.pause(container_id)


def unpause(engine: Engine, container_id: str) -> None:
    engine.api.unpause(container_id)


class CommandTimeout(SalvageError):
    pass


def execute(
    engine: Engine, container_id: str, command: str, user: Optional[str], timeout: float
) -> Tuple[int, str]:
    """Run `command` through /bin/sh inside the container; (exit code, output).

    docker-py reads an exec's output with no timeout at all, so the output is read on a
    thread and the connection cut at `timeout` (Docker cannot kill an exec: the command
    may go on inside the container, and the error says so).
    """
    api = engine.api
    exec_id = api.exec_create(container_id, ["/bin/sh", "-c", command], user=user or "")
    return _finish(engine, exec_id, api.exec_start(exec_id, socket=True), timeout)


@dataclass
class Armed:
    """An exec started ahead of time, its command waiting for a signal (`arm`)."""

    exec_id: str
    stream: Any


def arm(
    engine: Engine,
    container_id: str,
    command: str,
    user: Optional[str],
    ready: bytes,
    timeout: float,
) -> Armed:
    """Start `command` (through /bin/sh) now, and wait for its first output to be `ready`
    (it waits for a signal from then on): the exec's own cost, tens of ms, is paid now, not
    when `finish` is wanted. Raises EngineError when it does not say it is ready."""
    api = engine.api
    exec_id = api.exec_create(container_id, ["/bin/sh", "-c", command], user=user or "")
    armed = Armed(exec_id, api.exec_start(exec_id, socket=True))
    said = _first(armed.stream, timeout)
    if said != ready:
        disarm(armed)
        raise EngineError(f"the command did not get ready: {said!r}")
    return armed


def finish(
    engine: Engine, armed: Armed, begun: bytes, begin_timeout: float, timeout: float
) -> Tuple[int, str]:
    """Once the armed command was signalled: its exit code and its output after `begun`,
    which it must say first, within `begin_timeout` (CommandTimeout otherwise: it never
    got the signal), as `execute`'s."""
    said = _first(armed.stream, begin_timeout)
    if said != begun:
        disarm(armed)
        raise CommandTimeout(f"did not start within {begin_timeout:.0f} s ({said!r})")
    return _finish(engine, armed.exec_id, armed.stream, timeout)


def _first(stream, timeout: float) -> Optional[bytes]:
    """The first frame of an exec's output, or None by `timeout`."""
    from docker.utils.socket import next_frame_header, read_exactly

    said: list = []

    def read() -> None:
        try:
            _, length = next_frame_header(stream)
            said.append(read_exactly(stream, length) if length > 0 else b"")
        except OSError:
            pass

    reader = threading.Thread(target=read, name="exec-first", daemon=True)
    reader.start()
    reader.join(timeout)
    return said[0] if said else None


def disarm(armed: Armed) -> None:
    """Stop reading an armed command (it ends with its container)."""
    try:
        getattr(armed.stream, "_sock", armed.stream).shutdown(socket.SHUT_RDWR)
        armed.stream.close()
    except OSError:
        pass


def _finish(engine: Engine, exec_id: str, stream, timeout: float) -> Tuple[int, str]:
    from docker.utils.socket import frames_iter

    output: list = []

    def read() -> None:
        try:
            output.extend(data for _, data in frames_iter(stream, tty=False))
        except OSError:
            pass

    reader = threading.Thread(target=read, name="exec-output", daemon=True)
    reader.start()
    reader.join(timeout)
    if reader.is_alive():
        getattr(stream, "_sock", stream).shutdown(socket.SHUT_RDWR)
        reader.join(5)
        raise CommandTimeout(
            f"still running after {timeout:.0f} s (left running inside the container)"
        )
    stream.close()
    code = engine.api.exec_inspect(exec_id).get("ExitCode")
    text = b"".join(output).decode("utf-8", "replace")
    return (code if code is not None else -1), text
