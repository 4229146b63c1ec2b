"""An in-memory Docker engine for unit tests of salvage's decisions (no root, no dockerd).

Modelled on docker-py's own fake API client (docker/tests/unit/fake_api_client.py): an
object with the `docker.APIClient` methods salvage calls, answering as the engine does
(the same dict shapes, docker-py's exceptions), over containers, volumes and images kept
in memory. `Engine(api=FakeAPIClient())` puts salvage on it. The engine's own clock
(StartedAt, FinishedAt) is `clock`, moved by hand or by each state change.

Failures are injected: `fail(method, error, nth)` raises on the nth call from now;
`crane` decides what a crane does (its exit code, and what happens meanwhile);
`commands` what a pre/post command does (its exit code and output, or hangs).

The real-engine suites stay the reference: this fake is for fast tests of decisions.
"""

from __future__ import annotations

import functools
import itertools
import socket
import struct
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable, Dict, List, Optional, Tuple

from docker.errors import APIError, ImageNotFound, NotFound

from salvage.engine.client import Engine


class FakeClock:
    """The engine's clock: each state change moves it on by a millisecond."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def advance(self, seconds: float = 0.001) -> float:
        self.now += seconds
        return self.now

    def docker(self) -> str:
        """Docker's RFC 3339 time with nanoseconds."""
        whole = datetime.fromtimestamp(int(self.now), timezone.utc)
        nanos = round((self.now - int(self.now)) * 1e9)
        return whole.strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos:09d}Z"


@dataclass
class FakeContainer:
    id: str
    name: str
    image: str = "app"
    status: str = "running"  # created, running, paused, exited, dead
    labels: Dict[str, str] = field(default_factory=dict)
    volumes: Tuple[str, ...] = ()
    env: Dict[str, str] = field(default_factory=dict)
    command: List[str] = field(default_factory=list)  # its entrypoint and command
    host_config: dict = field(default_factory=dict)
    stop_timeout: Optional[int] = None
    started_at: str = "0001-01-01T00:00:00Z"
    finished_at: str = "0001-01-01T00:00:00Z"
    exit_code: int = 0
    logs: List[bytes] = field(default_factory=list)


@dataclass
class Exec:
    container: FakeContainer
    command: str
    user: str
    code: Optional[int] = None


def _not_found(what: str) -> NotFound:
    return NotFound(f"No such {what}", explanation=f"No such {what}")


def _conflict(message: str) -> APIError:
    return APIError(message, explanation=message)


def _api(method):
    """An API call: recorded in `calls`, and failing as `fail` says."""

    @functools.wraps(method)
    def call(self, *args, **kwargs):
        self.calls.append((method.__name__, args))
        failure = self._due(method.__name__)
        if failure and not failure[2]:
            raise failure[1]
        answer = method(self, *args, **kwargs)
        if failure:
            raise failure[1]
        return answer

    return call


class FakeAPIClient:
    api_version = "1.41"

    def __init__(self, clock: Optional[FakeClock] = None) -> None:
        self.clock = clock or FakeClock()
        self.by_id: Dict[str, FakeContainer] = {}
        self.volume_list: Dict[str, dict] = {}
        self.images: Dict[str, Dict[str, str]] = {}  # image -> its labels
        self.calls: List[Tuple[str, tuple]] = []  # every call, in order: (method, args)
        self.created: List[FakeContainer] = []  # by create_container, removed or not
        self._failures: Dict[str, List[list]] = {}
        self._ids = itertools.count(1)
        self._execs: Dict[str, Exec] = {}
        self.signalled: Dict[str, threading.Event] = {}  # SIGUSR1 sent to a container
        self._open: List[socket.socket] = []
        # What a crane (or any container salvage creates) does: its exit code; it may act
        # on the fake meanwhile, and say things (container.logs).
        self.crane: Callable[[FakeAPIClient, FakeContainer], int] = lambda api, crane: 0
        # What a container labelled salvage.stage does (salvage.crane.staging): the tide's
        # probe of the crane image (command None), or a stager's check or copy (an exec's
        # command): (exit code, output). By default it cannot stage, as in an image without
        # GNU cp, so that a run goes the classic way.
        self.stager: Callable[
            [FakeAPIClient, FakeContainer, Optional[str]], Optional[Tuple[int, str]]
        ] = _cannot_stage
        # What a command does: (exit code, output), or None for one that never ends.
        self.commands: Callable[[FakeContainer, str], Optional[Tuple[int, str]]] = (
            lambda container, command: (0, "")
        )

    # -- the test's side -------------------------------------------------------------

    def engine(self, retries: int = 0) -> Engine:
        return Engine(retries=retries, api=self)

    def fail(self, method: str, error: BaseException, nth: int = 1, after: bool = False) -> None:
        """Raise `error` on the nth call of `method` from now (once); `after`: once the call
        is done (the engine did it, its answer never came)."""
        self._failures.setdefault(method, []).append([nth, error, after])

    def add_volume(self, name: str, labels: Optional[Dict[str, str]] = None) -> str:
        self.volume_list[name] = {
            "Name": name,
            "Driver": "local",
            "Labels": labels or {},
            "Options": {},
            "Scope": "local",
            "CreatedAt": self.clock.docker(),
            "Mountpoint": f"/v/{name}",
        }
        return name

    def add_container(self, name: str, status: str = "running", **kw) -> str:
        container = FakeContainer(f"{next(self._ids):064x}", name, **kw)
        self.by_id[container.id] = container
        if status != "created":
            self._set(container, "running")
            if status in ("exited", "dead"):
                self._set(container, status)
            container.status = status
        return container.id

    def state(self, name: str) -> Optional[str]:
        found = [c for c in self.by_id.values() if c.name == name]
        return found[0].status if found else None

    def called(self, method: str) -> List[tuple]:
        return [args for name, args in self.calls if name == method]

    def close_streams(self) -> None:
        for end in self._open:
            end.close()

    # -- the API ---------------------------------------------------------------------

    def _due(self, method: str) -> Optional[list]:
        for failure in self._failures.get(method, []):
            failure[0] -= 1
            if failure[0] == 0:
                self._failures[method].remove(failure)
                return failure
        return None

    def _get(self, ref) -> FakeContainer:
        ref = ref["Id"] if isinstance(ref, dict) else ref
        for container in self.by_id.values():
            if ref in (container.id, container.name) or (
                len(ref) >= 12 and container.id.startswith(ref)
            ):
                return container
        raise _not_found(f"container: {ref}")

    def _set(self, container: FakeContainer, status: str) -> None:
        self.clock.advance()
        if status == "running" and container.status not in ("running", "paused"):
            container.started_at = self.clock.docker()
        if status in ("exited", "dead") and container.status in ("running", "paused"):
            container.finished_at = self.clock.docker()
        container.status = status

    def close(self) -> None:
        pass

    @_api
    def version(self) -> dict:
        return {"ApiVersion": self.api_version, "Version": "fake"}

    @_api
    def ping(self) -> bool:
        return True

    @_api
    def containers(self, all: bool = False, filters: Optional[dict] = None) -> List[dict]:
        wanted = (filters or {}).get("label") or []
        wanted = [wanted] if isinstance(wanted, str) else wanted
        found = []
        for c in self.by_id.values():
            if not all and c.status != "running":
                continue
            if not _labelled(c.labels, wanted):
                continue
            found.append(
                {
                    "Id": c.id,
                    "Names": [f"/{c.name}"],
                    "Image": c.image,
                    "State": c.status,
                    "Labels": dict(c.labels),
                    "Mounts": [{"Type": "volume", "Name": v} for v in c.volumes],
                }
            )
        return found

    @_api
    def inspect_container(self, ref) -> dict:
        c = self._get(ref)
        return {
            "Id": c.id,
            "Name": f"/{c.name}",
            "Image": c.image,
            "State": {
                "Status": c.status,
                "Running": c.status in ("running", "paused"),
                "Paused": c.status == "paused",
                "StartedAt": c.started_at,
                "FinishedAt": c.finished_at,
                "ExitCode": c.exit_code,
            },
            "Config": {
                "Labels": dict(c.labels),
                "Env": [f"{k}={v}" for k, v in c.env.items()],
                "StopTimeout": c.stop_timeout,
            },
            "HostConfig": {"AutoRemove": bool(c.host_config.get("auto_remove"))},
            "Mounts": [{"Type": "volume", "Name": v} for v in c.volumes],
        }

    @_api
    def stop(self, ref, timeout: Optional[int] = None) -> None:
        c = self._get(ref)
        if c.status in ("running", "paused"):
            self._set(c, "exited")
        if c.host_config.get("auto_remove"):
            del self.by_id[c.id]

    @_api
    def kill(self, ref, signal=None) -> None:
        c = self._get(ref)
        if c.status not in ("running", "paused"):
            raise _conflict(f"Container {c.id} is not running")
        if signal == "SIGUSR1":  # a stager passes it on to its armed syncs
            self.signalled.setdefault(c.id, threading.Event()).set()
            return
        c.exit_code = 137
        self._set(c, "exited")

    @_api
    def start(self, ref) -> None:
        c = self._get(ref)
        if c.status == "paused":
            raise _conflict("cannot start a paused container, try unpause instead")
        if c.status != "running":
            self._set(c, "running")

    @_api
    def pause(self, ref) -> None:
        c = self._get(ref)
        if c.status != "running":
            raise _conflict(f"Container {c.id} is not running")
        self._set(c, "paused")

    @_api
    def unpause(self, ref) -> None:
        c = self._get(ref)
        if c.status != "paused":
            raise _conflict(f"Container {c.id} is not paused")
        self._set(c, "running")

    @_api
    def remove_container(self, ref, force: bool = False, v: bool = False) -> None:
        c = self._get(ref)
        if c.status in ("running", "paused") and not force:
            raise _conflict(f"cannot remove container {c.name}: it is running")
        del self.by_id[c.id]

    def create_host_config(self, **kwargs) -> dict:
        return dict(kwargs)

    @_api
    def create_container(
        self,
        image: str,
        command=None,
        environment=None,
        labels=None,
        host_config=None,
        name=None,
        entrypoint=None,
        **kw,
    ) -> dict:
        if name and any(c.name == name for c in self.by_id.values()):
            raise _conflict(f'Conflict. The container name "/{name}" is already in use')
        mounts = (host_config or {}).get("mounts") or []
        for mount in mounts:
            if mount.get("Type") == "volume" and mount["Source"] not in self.volume_list:
                self.add_volume(mount["Source"])  # as Docker does: why salvage checks first
        container_id = self.add_container(
            name or f"fake_{next(self._ids)}",
            "created",
            image=image,
            labels=dict(labels or {}),
            env=dict(environment or {}),
            host_config=dict(host_config or {}),
            command=[*(entrypoint or []), *([command] if isinstance(command, str) else [])],
            volumes=_volumes(mounts, (host_config or {}).get("binds")),
        )
        self.created.append(self.by_id[container_id])
        return {"Id": container_id, "Warnings": []}

    @_api
    def put_archive(self, ref, path: str, data) -> bool:
        self._get(ref)
        return True

    @_api
    def get_archive(self, ref, path: str, chunk_size=None):
        """A crane's files are not kept here: every path is missing (a crane that reports
        nothing, which the interface allows)."""
        self._get(ref)
        raise NotFound(f"Could not find the file {path} in container {ref}")

    @_api
    def wait(self, ref, timeout=None) -> dict:
        """The crane runs here: `crane` says its exit code (unless it was killed)."""
        c = self._get(ref)
        if c.status == "running":
            if "salvage.stage" in c.labels:
                code, said = self.stager(self, c, None) or (137, "")
                c.logs.append(said.encode())
            else:
                code = self.crane(self, c)
            if c.status == "running":  # not killed meanwhile
                c.exit_code = code
                self._set(c, "exited")
        return {"StatusCode": c.exit_code, "Error": None}

    @_api
    def logs(self, ref, stdout=True, stderr=True, stream=False, follow=False, **kw):
        text = b"".join(self._get(ref).logs)
        return iter([text] if text else []) if stream else text

    @_api
    def volumes(self, filters=None) -> dict:
        wanted = (filters or {}).get("label") or []
        wanted = [wanted] if isinstance(wanted, str) else wanted
        found = [dict(v) for v in self.volume_list.values() if _labelled(v["Labels"], wanted)]
        return {"Volumes": found, "Warnings": None}

    @_api
    def inspect_volume(self, name: str) -> dict:
        if name not in self.volume_list:
            raise _not_found(f"volume: {name}")
        return dict(self.volume_list[name])

    @_api
    def create_volume(self, name: str, driver=None, driver_opts=None, labels=None) -> dict:
        return self.volume_list.get(name) or self.volume_list[self.add_volume(name, labels)]

    @_api
    def remove_volume(self, name: str, force: bool = False) -> None:
        if name not in self.volume_list:
            raise _not_found(f"volume: {name}")
        if any(name in c.volumes for c in self.by_id.values()):
            raise _conflict(f"remove {name}: volume is in use")
        del self.volume_list[name]

    @_api
    def inspect_image(self, image: str) -> dict:
        if image not in self.images:
            raise ImageNotFound(f"No such image: {image}", explanation=f"No such image: {image}")
        return {"Id": f"sha256:{image}", "Config": {"Labels": dict(self.images[image])}}

    @_api
    def exec_create(self, ref, cmd, user: str = "", **kw) -> dict:
        c = self._get(ref)
        if c.status != "running":
            raise _conflict(
                f"Container {c.id} is {c.status}"
                if c.status == "paused"
                else f"Container {c.id} is not running"
            )
        exec_id = f"exec{next(self._ids)}"
        self._execs[exec_id] = Exec(c, cmd[-1] if isinstance(cmd, list) else cmd, user)
        return {"Id": exec_id}

    @_api
    def exec_start(self, exec_id, socket: bool = False, **kw):
        """A real socket, as docker-py returns with socket=True: the command's output in
        Docker's multiplexed frames, then the end (never, for a command that hangs)."""
        run = self._execs[exec_id["Id"] if isinstance(exec_id, dict) else exec_id]
        ours, theirs = _socketpair()
        self._open += [ours, theirs]

        def frame(data: bytes) -> bytes:
            return struct.pack(">BxxxL", 1, len(data)) + data if data else b""

        def answer(before: bytes = b"") -> None:
            if "salvage.stage" in run.container.labels:
                said = self.stager(self, run.container, run.command)
            else:
                said = self.commands(run.container, run.command)
            if said is not None:
                run.code, output = said
                theirs.sendall(before + frame(output.encode()))
                theirs.shutdown(2)

        if "echo salvage-armed" in run.command:  # a staging sync: it waits for SIGUSR1
            theirs.sendall(frame(b"salvage-armed\n"))
            signalled = self.signalled.setdefault(run.container.id, threading.Event())

            def armed() -> None:
                if signalled.wait(30):
                    answer(frame(b"salvage-go\n"))

            threading.Thread(target=armed, daemon=True).start()
        else:
            answer()
        return ours

    @_api
    def exec_inspect(self, exec_id) -> dict:
        run = self._execs[exec_id["Id"] if isinstance(exec_id, dict) else exec_id]
        return {"ExitCode": run.code, "Running": run.code is None}


def _socketpair() -> Tuple[socket.socket, socket.socket]:
    return socket.socketpair()


def _labelled(labels: Dict[str, str], wanted: List[str]) -> bool:
    """Docker's label filter: every `key` or `key=value` holds."""
    for item in wanted:
        key, sep, value = item.partition("=")
        if key not in labels or (sep and labels[key] != value):
            return False
    return True


def _volumes(mounts: list, binds) -> Tuple[str, ...]:
    """The volumes a container mounts: volume mounts, and binds "volume:/path[:ro]"."""
    named = [m["Source"] for m in mounts if m.get("Type") == "volume"]
    if isinstance(binds, list):  # a dict binds host paths
        named += [b.split(":")[0] for b in binds if not b.startswith("/")]
    return tuple(named)


def _cannot_stage(api, container, command) -> Tuple[int, str]:
    return 3, "the crane image has no GNU cp (--reflink)\n"
