"""An in-memory Docker engine for unit tests of salvage's decisions (no root, no dockerd).

Modelled on docker-py's own fake API client (docker/tests/unit/fake_api_client.py): an
object with the `docker.APIClient` methods salvage calls, answering as the engine does
(the same dict shapes, docker-py's exceptions with their HTTP status), over containers,
volumes and images kept in memory. `Engine(api=FakeAPIClient())` puts salvage on it. The
engine's own clock (StartedAt, FinishedAt) is `clock`, moved by hand or by each state change.

It is held to a real dockerd by one contract suite (tests/support/engine_contract.py, run
on both): states and their transitions, restart policies, AutoRemove, stop (SIGTERM, the
timeout, then SIGKILL: 137) and pause, the list with and without `all`, bind mounts,
errors with their status, label filters, an engine restart. What it does not model it
refuses loudly (NotImplementedError, TypeError), never answers otherwise than Docker would.

A container's process is described, not run: `exits` (it ends by itself at once, with that
code, at each start: a crash loop under a restart policy), `on_term` (its exit code on
SIGTERM; None: it ignores SIGTERM, as busybox `sleep` does as PID 1) and `term_delay` (how
long it takes to exit once told). `end(ref)` ends a process by itself, as a crash does.
A container made by `create_container` is a crane: `wait` runs `crane`.

Failures are injected: `fail(method, error, nth)` raises on the nth call from now;
`then(method, action, nth)` acts once that call is done (an engine that changes something
meanwhile); `crane` decides what a crane does (its exit code, and what happens meanwhile);
`commands` what a pre/post command does (its exit code and output, or hangs).

The real-engine suites stay the reference: this fake is for fast tests of decisions.
"""

from __future__ import annotations

import functools
import http
import itertools
import json
import os
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable, Dict, List, Optional, Tuple

import requests
from docker.errors import APIError, create_api_error_from_http_exception
from docker.types import HostConfig

from salvage.engine.client import Engine

LIVE = ("running", "paused", "restarting")  # State.Running is true
DOCKER_STOP_TIMEOUT = 10  # seconds, when neither the call nor the container says
SHUTDOWN_TIMEOUT = 15  # dockerd's --shutdown-timeout default
# Host config keys the fake models; any other one is refused (it may change what Docker does).
MODELLED_HOST_CONFIG = {
    "Binds",
    "Mounts",
    "AutoRemove",
    "RestartPolicy",
    "Init",
    "NetworkMode",
    "LogConfig",
}
# create_container's arguments that change nothing the fake models; others are refused.
UNMODELLED_CREATE = {"user", "stdin_open", "detach", "tty", "working_dir", "hostname"}
CONTAINER_FILTERS = {
    "ancestor",
    "before",
    "expose",
    "exited",
    "health",
    "id",
    "isolation",
    "is-task",
    "label",
    "name",
    "network",
    "publish",
    "since",
    "status",
    "volume",
}
VOLUME_FILTERS = {"dangling", "driver", "label", "name"}
# Where each API call goes (for the request its errors carry, as docker-py's do).
ROUTES = {
    "version": ("GET", "/version"),
    "containers": ("GET", "/containers/json"),
    "inspect_container": ("GET", "/containers/{}/json"),
    "create_container": ("POST", "/containers/create"),
    "start": ("POST", "/containers/{}/start"),
    "stop": ("POST", "/containers/{}/stop"),
    "kill": ("POST", "/containers/{}/kill"),
    "pause": ("POST", "/containers/{}/pause"),
    "unpause": ("POST", "/containers/{}/unpause"),
    "wait": ("POST", "/containers/{}/wait"),
    "remove_container": ("DELETE", "/containers/{}"),
    "logs": ("GET", "/containers/{}/logs"),
    "put_archive": ("PUT", "/containers/{}/archive"),
    "get_archive": ("GET", "/containers/{}/archive"),
    "exec_create": ("POST", "/containers/{}/exec"),
    "exec_start": ("POST", "/exec/{}/start"),
    "exec_inspect": ("GET", "/exec/{}/json"),
    "volumes": ("GET", "/volumes"),
    "inspect_volume": ("GET", "/volumes/{}"),
    "create_volume": ("POST", "/volumes/create"),
    "remove_volume": ("DELETE", "/volumes/{}"),
    "inspect_image": ("GET", "/images/{}/json"),
}


def api_error(status: int, message: str, method: str = "GET", path: str = "/") -> APIError:
    """The exception docker-py raises for an engine's answer `status` saying `message`
    (NotFound, ImageNotFound or APIError, with the response: status_code, request...)."""
    response = requests.Response()
    response.status_code = status
    response.reason = http.HTTPStatus(status).phrase
    response.url = f"http+docker://localhost/v1.41{path}"
    response.headers["Content-Type"] = "application/json"
    response._content = json.dumps({"message": message}).encode()
    response.request = requests.Request(method, response.url).prepare()
    try:
        raise requests.exceptions.HTTPError(f"{status} {response.reason}", response=response)
    except requests.exceptions.HTTPError as error:
        try:
            create_api_error_from_http_exception(error)
        except APIError as made:
            return made
    raise AssertionError("docker-py raised no APIError")


def read_timeout() -> requests.exceptions.ConnectionError:
    """What docker-py raises over a unix socket when an answer does not come in time."""
    return requests.exceptions.ConnectionError(
        "UnixHTTPConnectionPool(host='localhost', port=None): Read timed out."
    )


class _Refusal(Exception):
    """An engine's error answer, made into docker-py's exception by `_api`."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


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
    status: str = "running"  # created, running, paused, restarting, exited, dead
    labels: Dict[str, str] = field(default_factory=dict)
    volumes: Tuple[str, ...] = ()  # the named volumes it mounts
    binds: Tuple[str, ...] = ()  # host paths it bind-mounts: "source:destination[:ro]"
    env: Dict[str, str] = field(default_factory=dict)
    command: List[str] = field(default_factory=list)  # its entrypoint and command
    host_config: dict = field(default_factory=dict)  # Docker's keys (HostConfig)
    stop_timeout: Optional[int] = None
    restart: str = ""  # its restart policy: "", "no", "always", "unless-stopped", "on-failure"
    max_restarts: int = 0  # on-failure's MaximumRetryCount (0: no limit)
    auto_remove: bool = False
    # Its process: see the module's docstring.
    exits: Optional[int] = None
    on_term: Optional[int] = 0
    term_delay: float = 0.0
    crane: bool = False  # made by create_container: `wait` runs the fake's `crane`
    started_at: str = "0001-01-01T00:00:00Z"
    finished_at: str = "0001-01-01T00:00:00Z"
    exit_code: int = 0
    restart_count: int = 0
    manually_stopped: bool = False  # a stop or kill: no restart policy applies
    pinned: bool = False  # its files cannot be removed: a removal leaves it dead
    ends_at: Optional[float] = None  # monotonic: a stop under way ends it then...
    ends_with: int = 0  # ...with this exit code...
    ends_on_clock: float = 0.0  # ...at this time of the engine's clock
    logs: List[bytes] = field(default_factory=list)
    mounts: List[dict] = field(default_factory=list)  # as the engine lists them


@dataclass
class Exec:
    container: FakeContainer
    command: str
    user: str
    code: Optional[int] = None


def _api(method):
    """An API call: recorded in `calls`, failing as `fail` says, acting as `then` says; the
    engine's refusals become docker-py's exceptions."""

    @functools.wraps(method)
    def call(self, *args, **kwargs):
        name = method.__name__
        self.calls.append((name, args))
        failure = self._due(self._failures, name)
        if failure and not failure[2]:
            raise failure[1]
        try:
            answer = method(self, *args, **kwargs)
        except _Refusal as refusal:
            verb, path = ROUTES[name]
            ref = args[0] if args else ""
            ref = ref.get("Id", "") if isinstance(ref, dict) else ref
            raise api_error(refusal.status, refusal.message, verb, path.format(ref)) from None
        if failure:
            raise failure[1]
        action = self._due(self._actions, name)
        if action:
            action[1]()
        return answer

    return call


class FakeAPIClient:
    api_version = "1.41"

    def __init__(self, clock: Optional[FakeClock] = None, second: float = 0.01) -> None:
        self.clock = clock or FakeClock()
        # The containers' time runs faster: a second of theirs (a grace period, a wait's
        # timeout) is `second` of real time; the engine's clock counts whole seconds.
        self.second = second
        self.by_id: Dict[str, FakeContainer] = {}
        self.volume_list: Dict[str, dict] = {}
        self.images: Dict[str, Dict[str, str]] = {}  # image -> its labels
        self.calls: List[Tuple[str, tuple]] = []  # every call, in order: (method, args)
        self.created: List[FakeContainer] = []  # by create_container, removed or not
        self._failures: Dict[str, List[list]] = {}
        self._actions: Dict[str, List[list]] = {}
        self._ids = itertools.count(1)
        self._execs: Dict[str, Exec] = {}
        self._lock = threading.RLock()  # salvage calls from several threads
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

    def then(self, method: str, action: Callable[[], object], nth: int = 1) -> None:
        """Once the nth call of `method` from now is done, `action()` (before its answer)."""
        self._actions.setdefault(method, []).append([nth, action])

    def add_volume(self, name: str, labels: Optional[Dict[str, str]] = None) -> str:
        self.volume_list[name] = {
            "Name": name,
            "Driver": "local",
            "Labels": labels or {},
            "Options": {},
            "Scope": "local",
            "CreatedAt": self.clock.docker(),
            "Mountpoint": f"/var/lib/docker/volumes/{name}/_data",
        }
        return name

    def add_container(
        self,
        name: str,
        status: str = "running",
        restart: str = "",
        auto_remove: bool = False,
        **kw,
    ) -> str:
        """A container as a person made it, brought to `status` the way the engine would:
        started, then paused, stopped (a person's stop), or crashing in a loop ("restarting":
        under `restart`, "always" unless given). "dead": a removal that failed."""
        if status == "restarting":
            restart = restart or "always"
            kw.setdefault("exits", 1)
        if restart and auto_remove:
            raise ValueError("Docker refuses AutoRemove with a restart policy")
        container = FakeContainer(
            f"{next(self._ids):064x}", name, restart=restart, auto_remove=auto_remove, **kw
        )
        container.status = "created"
        container.mounts = [*_volume_mounts(container.volumes), *_bind_mounts(container.binds)]
        self.by_id[container.id] = container
        if status not in ("created", "dead"):
            self._run(container)
        if status == "paused":
            self._set(container, "paused")
        elif status == "exited":
            self._ended(container, container.exit_code, manual=True)
        elif status == "dead":
            self._set(container, "dead")
        if container.status != status:
            raise ValueError(f"a container cannot be made {status} so: it is {container.status}")
        return container.id

    def state(self, name: str) -> Optional[str]:
        found = [c for c in self.by_id.values() if c.name == name]
        if found:
            self._tick(found[0])
        return found[0].status if found else None

    def called(self, method: str) -> List[tuple]:
        return [args for name, args in self.calls if name == method]

    def close_streams(self) -> None:
        for end in self._open:
            end.close()

    def end(self, ref, code: Optional[int] = None) -> None:
        """Its process ends by itself (a crash, its work done): with `code`, else `exits`
        or 0. Its restart policy applies (not to a stop's or a kill's end)."""
        c = self._get(ref)
        if c.status not in ("running", "paused"):
            raise ValueError(f"{c.name} is {c.status}: no process to end")
        self._ended(c, c.exits if code is None and c.exits is not None else (code or 0))

    def begin_stop(self, ref, timeout: Optional[int] = None) -> None:
        """A stop the engine carries out whose caller is gone (salvage died during the
        container's grace period): SIGTERM now, over by the time a stop would return."""
        c = self._get(ref)
        if c.status not in ("running", "paused"):
            raise ValueError(f"{c.name} is {c.status}: nothing to stop")
        self._terminate(c, self._stop_timeout(c, timeout))

    def pin(self, ref, pinned: bool = True) -> None:
        """Its files cannot be removed (or can again): a removal fails and leaves it dead."""
        self._get(ref).pinned = pinned

    def restart_engine(self) -> None:
        """dockerd stopped and started again: every live container is stopped (not by a
        person: SIGTERM, SIGKILL after the shutdown timeout); then `--rm` ones are removed
        and restart policies apply: "always" starts even one a person stopped,
        "unless-stopped" not that one, "on-failure" one whose exit code is not 0."""
        with self._lock:
            for c in list(self.by_id.values()):
                self._tick(c)
                if c.status in LIVE:
                    self._set(c, "exited")
                    delay = c.term_delay if c.on_term is not None else None
                    fast = delay is not None and delay <= SHUTDOWN_TIMEOUT
                    c.exit_code = c.on_term if fast and c.on_term is not None else 137
                    c.ends_at = None
            for c in list(self.by_id.values()):
                if c.auto_remove and c.status == "exited":
                    del self.by_id[c.id]
                elif c.status == "exited" and self._restarts(c, at_engine_start=True):
                    self._run(c)
            for run in self._execs.values():
                if run.code is None:
                    run.code = 137

    # -- the engine's workings -------------------------------------------------------

    def _due(self, table: Dict[str, List[list]], method: str) -> Optional[list]:
        with self._lock:
            for item in table.get(method, []):
                item[0] -= 1
                if item[0] == 0:
                    table[method].remove(item)
                    return item
        return None

    def _get(self, ref) -> FakeContainer:
        ref = ref["Id"] if isinstance(ref, dict) else ref
        for container in list(self.by_id.values()):
            if ref in (container.id, container.name) or (
                len(ref) >= 12 and container.id.startswith(ref)
            ):
                self._tick(container)
                if container.id not in self.by_id:  # removed (--rm) as its stop ended
                    break
                return container
        raise _Refusal(404, f"No such container: {ref}")

    def _tick(self, c: FakeContainer) -> None:
        """A stop under way ends when its time has come."""
        with self._lock:
            if c.ends_at is not None and time.monotonic() >= c.ends_at:
                c.ends_at = None
                self.clock.now = max(self.clock.now, c.ends_on_clock)
                if c.status in ("running", "paused"):
                    self._ended(c, c.ends_with, manual=True)

    def _set(self, container: FakeContainer, status: str) -> None:
        self.clock.advance()
        if status == "running" and container.status not in LIVE:
            container.started_at = self.clock.docker()
        if status in ("exited", "dead") and container.status in LIVE:
            container.finished_at = self.clock.docker()
        container.status = status

    def _run(self, c: FakeContainer) -> None:
        """Start its process (a crash loop's ends at once)."""
        c.manually_stopped = False
        self._set(c, "running")
        if c.exits is not None:
            self._ended(c, c.exits)

    def _restarts(self, c: FakeContainer, at_engine_start: bool = False) -> bool:
        if c.restart == "always":
            return at_engine_start or not c.manually_stopped
        if c.restart == "unless-stopped":
            return not c.manually_stopped
        if c.restart == "on-failure":
            room = not c.max_restarts or c.restart_count < c.max_restarts
            return c.exit_code != 0 and room and (at_engine_start or not c.manually_stopped)
        return False

    def _ended(self, c: FakeContainer, code: int, manual: bool = False) -> None:
        """Its process ended: by a stop or kill (`manual`), else by itself."""
        c.exit_code, c.ends_at = code, None
        c.manually_stopped = manual
        self._set(c, "exited")
        for run in self._execs.values():
            if run.container is c and run.code is None:
                run.code = 137
        if c.auto_remove:
            del self.by_id[c.id]
            return
        if manual or not self._restarts(c):
            return
        c.restart_count += 1
        if c.exits is None:  # it ran a while: started again at once
            self._set(c, "running")
        elif c.restart == "on-failure" and c.max_restarts:  # its loop runs out
            c.restart_count = c.max_restarts
        else:  # a crash loop: mostly waiting out its growing back-off
            self._set(c, "restarting")

    def _stop_timeout(self, c: FakeContainer, timeout: Optional[int]) -> float:
        if timeout is not None:
            return timeout
        return DOCKER_STOP_TIMEOUT if c.stop_timeout is None else c.stop_timeout

    def _terminate(self, c: FakeContainer, grace: float) -> None:
        """SIGTERM (a paused container gets it as it is unpaused), SIGKILL after `grace`:
        it ends at once, or `ends_at`."""
        handled = c.on_term is not None and c.term_delay <= grace
        delay = c.term_delay if handled else grace
        code = c.on_term if handled and c.on_term is not None else 137
        if c.status == "paused":
            self._set(c, "running")
        if delay <= 0:
            self._ended(c, code, manual=True)
        else:
            c.ends_at, c.ends_with = time.monotonic() + delay * self.second, code
            c.ends_on_clock = self.clock.now + delay
            c.manually_stopped = True

    def close(self) -> None:
        pass

    # -- the API ---------------------------------------------------------------------

    @_api
    def version(self) -> dict:
        return {"ApiVersion": self.api_version, "Version": "fake"}

    @_api
    def ping(self) -> bool:
        return True

    @_api
    def containers(self, all: bool = False, filters: Optional[dict] = None) -> List[dict]:
        wanted = _label_filter(filters, CONTAINER_FILTERS)
        found = []
        for c in list(self.by_id.values()):
            self._tick(c)
            if c.id not in self.by_id:
                continue
            if not all and c.status not in LIVE:
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
                    "Mounts": [dict(m) for m in c.mounts],
                }
            )
        return found

    @_api
    def inspect_container(self, ref) -> dict:
        c = self._get(ref)
        config = {
            "Image": c.image,
            "Labels": dict(c.labels),
            "Env": [f"{k}={v}" for k, v in c.env.items()],
        }
        if c.stop_timeout is not None:  # Docker leaves it out unless set
            config["StopTimeout"] = c.stop_timeout
        return {
            "Id": c.id,
            "Name": f"/{c.name}",
            "Image": f"sha256:{c.image}",
            "RestartCount": c.restart_count,
            "State": {
                "Status": c.status,
                "Running": c.status in LIVE,
                "Paused": c.status == "paused",
                "Restarting": c.status == "restarting",
                "Dead": c.status == "dead",
                "StartedAt": c.started_at,
                "FinishedAt": c.finished_at,
                "ExitCode": c.exit_code,
            },
            "Config": config,
            "HostConfig": {
                **c.host_config,
                "AutoRemove": c.auto_remove,
                "RestartPolicy": {"Name": c.restart, "MaximumRetryCount": c.max_restarts},
            },
            "Mounts": [dict(m) for m in c.mounts],
        }

    @_api
    def stop(self, ref, timeout: Optional[int] = None) -> None:
        """SIGTERM, then SIGKILL once `timeout` is over (the container's StopTimeout, else
        10 s): the call returns once it has stopped, as Docker's does."""
        with self._lock:
            c = self._get(ref)
            if c.status == "restarting":  # its restart is called off
                self._ended(c, c.exit_code, manual=True)
                return
            if c.status not in ("running", "paused"):
                return  # 304 Not Modified: no error
            if c.ends_at is None:
                self._terminate(c, self._stop_timeout(c, timeout))
            ends_at = c.ends_at
        if ends_at is not None:  # its grace period
            time.sleep(max(0.0, ends_at - time.monotonic()))
            self._tick(c)

    @_api
    def kill(self, ref, signal=None) -> None:
        c = self._get(ref)
        if c.status not in LIVE:
            raise _Refusal(409, f"Cannot kill container: {c.id}: Container {c.id} is not running")
        if c.status == "restarting":  # its restart is called off
            self._ended(c, c.exit_code, manual=True)
            return
        if signal in (None, "SIGKILL", "KILL", 9):
            self._ended(c, 137, manual=True)
        elif signal in ("SIGTERM", "TERM", 15):
            if c.status == "paused":
                raise NotImplementedError("the fake engine does not model a signal to a paused one")
            if c.on_term is not None:
                self._terminate(c, float("inf"))
        elif signal == "SIGUSR1":  # a stager passes it on to its armed syncs
            self.signalled.setdefault(c.id, threading.Event()).set()
        else:
            raise NotImplementedError(f"the fake engine does not model signal {signal}")

    @_api
    def start(self, ref) -> None:
        c = self._get(ref)
        if c.status == "paused":
            raise _Refusal(409, "cannot start a paused container, try unpause instead")
        if c.status == "dead":
            raise _Refusal(409, "container is marked for removal and cannot be started")
        if c.status in ("created", "exited"):
            self._run(c)

    @_api
    def pause(self, ref) -> None:
        c = self._get(ref)
        if c.status == "paused":
            raise _Refusal(409, f"Container {c.id} is already paused")
        if c.status == "restarting":
            raise _Refusal(
                409, f"Container {c.id} is restarting, wait until the container is running"
            )
        if c.status != "running":
            raise _Refusal(409, f"Container {c.id} is not running")
        self._set(c, "paused")

    @_api
    def unpause(self, ref) -> None:
        c = self._get(ref)
        if c.status != "paused":
            raise _Refusal(500, f"Container {c.id} is not paused")
        self._set(c, "running")

    @_api
    def remove_container(self, ref, force: bool = False, v: bool = False) -> None:
        c = self._get(ref)
        if c.status in LIVE and not force:
            then = "Unpause and then stop" if c.status == "paused" else "Stop"
            raise _Refusal(
                409,
                f"You cannot remove a {c.status} container {c.id}. {then} the container"
                " before attempting removal or force remove",
            )
        if c.status in LIVE:
            self._ended(c, 137, manual=True)
            if c.id not in self.by_id:
                return
        if c.pinned:
            self._set(c, "dead")
            raise _Refusal(
                500,
                f"unable to remove filesystem for {c.id}: unlinkat /var/lib/docker/containers"
                f"/{c.id}/pin: operation not permitted",
            )
        del self.by_id[c.id]

    def create_host_config(self, **kwargs) -> dict:
        """docker-py's own: the same checks, the engine's keys."""
        return HostConfig(self.api_version, **kwargs)

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
        stop_timeout: Optional[int] = None,
        **kw,
    ) -> dict:
        for key in set(kw) - UNMODELLED_CREATE:
            raise TypeError(f"the fake engine does not model create_container's {key}")
        host_config = dict(host_config or {})
        for key in set(host_config) - MODELLED_HOST_CONFIG:
            raise NotImplementedError(f"the fake engine does not model host config {key}")
        if image not in self.images:
            raise _Refusal(404, f"No such image: {image}")
        if name and any(c.name == name for c in self.by_id.values()):
            taken = next(c.id for c in self.by_id.values() if c.name == name)
            raise _Refusal(
                409,
                f'Conflict. The container name "/{name}" is already in use by container'
                f' "{taken}". You have to remove (or rename) that container to be able to'
                " reuse that name.",
            )
        policy = host_config.get("RestartPolicy") or {}
        restart = policy.get("Name") or ""
        if host_config.get("AutoRemove") and restart not in ("", "no"):
            raise _Refusal(400, "can't create 'AutoRemove' container with restart policy")
        mounts = []
        for mount in host_config.get("Mounts") or []:
            if mount.get("Type") == "bind" and not os.path.exists(mount["Source"]):
                raise _Refusal(
                    400,
                    'invalid mount config for type "bind": bind source path does not exist:'
                    f" {mount['Source']}",
                )
            mounts.append(_mount(mount))
        for bind in host_config.get("Binds") or []:
            mounts.append(_bind(bind))
        for mount in mounts:
            if mount["Type"] == "volume" and mount["Name"] not in self.volume_list:
                self.add_volume(mount["Name"])  # as Docker does: why salvage checks first
        if isinstance(command, str):
            command = [command]
        container = FakeContainer(
            f"{next(self._ids):064x}",
            name or f"fake_{next(self._ids)}",
            image=image,
            status="created",
            labels=dict(labels or {}),
            env=dict(environment or {}),
            host_config=host_config,
            stop_timeout=stop_timeout,
            restart=restart,
            max_restarts=policy.get("MaximumRetryCount") or 0,
            auto_remove=bool(host_config.get("AutoRemove")),
            command=[*(entrypoint or []), *(command or [])],
            volumes=tuple(m["Name"] for m in mounts if m["Type"] == "volume"),
            crane=True,
            mounts=mounts,
        )
        self.by_id[container.id] = container
        self.created.append(container)
        return {"Id": container.id, "Warnings": []}

    @_api
    def put_archive(self, ref, path: str, data) -> bool:
        self._get(ref)
        return True

    @_api
    def get_archive(self, ref, path: str, chunk_size=None):
        """A crane's files are not kept here: every path is missing (a crane that reports
        nothing, which the interface allows)."""
        c = self._get(ref)
        raise _Refusal(404, f"Could not find the file {path} in container {c.id}")

    @_api
    def wait(self, ref, timeout=None) -> dict:
        """A crane runs here: `crane` says its exit code (unless it was killed). Any other
        live process runs until it is stopped: a `timeout` runs out (docker-py's read
        timeout), no timeout is refused (it would wait for ever)."""
        c = self._get(ref)
        if c.status == "running" and c.crane:
            if "salvage.stage" in c.labels:
                code, said = self.stager(self, c, None) or (137, "")
                c.logs.append(said.encode())
            else:
                code = self.crane(self, c)
            if c.status == "running":  # not killed meanwhile
                self._ended(c, code)
        elif c.status in ("running", "paused"):
            if timeout is None:
                raise NotImplementedError(f"{c.name} never ends: wait() would wait for ever")
            deadline = time.monotonic() + timeout * self.second
            while c.status in ("running", "paused") and time.monotonic() < deadline:
                time.sleep(min(0.01, max(0.0, deadline - time.monotonic())))
                self._tick(c)
            if c.status in ("running", "paused"):
                raise read_timeout()
        return {"StatusCode": c.exit_code, "Error": None}

    @_api
    def logs(self, ref, stdout=True, stderr=True, stream=False, follow=False, **kw):
        text = b"".join(self._get(ref).logs)
        return iter([text] if text else []) if stream else text

    @_api
    def volumes(self, filters=None) -> dict:
        wanted = _label_filter(filters, VOLUME_FILTERS)
        found = [dict(v) for v in self.volume_list.values() if _labelled(v["Labels"], wanted)]
        return {"Volumes": found, "Warnings": None}

    @_api
    def inspect_volume(self, name: str) -> dict:
        if name not in self.volume_list:
            raise _Refusal(404, f"get {name}: no such volume")
        return dict(self.volume_list[name])

    @_api
    def create_volume(self, name: str, driver=None, driver_opts=None, labels=None) -> dict:
        return self.volume_list.get(name) or self.volume_list[self.add_volume(name, labels)]

    @_api
    def remove_volume(self, name: str, force: bool = False) -> None:
        if name not in self.volume_list:
            raise _Refusal(404, f"get {name}: no such volume")
        users = [c.id for c in self.by_id.values() if name in c.volumes]
        if users:
            raise _Refusal(409, f"remove {name}: volume is in use - [{', '.join(users)}]")
        del self.volume_list[name]

    @_api
    def inspect_image(self, image: str) -> dict:
        if image not in self.images:
            raise _Refusal(404, f"no such image: {image}: No such image: {image}")
        return {"Id": f"sha256:{image}", "Config": {"Labels": dict(self.images[image])}}

    @_api
    def exec_create(self, ref, cmd, user: str = "", **kw) -> dict:
        c = self._get(ref)
        if c.status == "paused":
            raise _Refusal(409, f"Container {c.id} is paused, unpause the container before exec")
        if c.status == "restarting":
            raise _Refusal(
                409, f"Container {c.id} is restarting, wait until the container is running"
            )
        if c.status != "running":
            raise _Refusal(409, f"Container {c.id} is not running")
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


def _label_filter(filters: Optional[dict], known: set) -> List[str]:
    """The label filter's items; any other filter is refused: Docker's 400 for a key it
    does not know, NotImplementedError for one it knows and the fake does not model."""
    wanted: List[str] = []
    for key, value in (filters or {}).items():
        if key not in known:
            raise _Refusal(400, f"Invalid filter '{key}'")
        if key != "label":
            raise NotImplementedError(f"the fake engine does not model the filter {key}")
        wanted += [value] if isinstance(value, str) else list(value)
    return wanted


def _labelled(labels: Dict[str, str], wanted: List[str]) -> bool:
    """Docker's label filter: every `key` or `key=value` holds."""
    for item in wanted:
        key, sep, value = item.partition("=")
        if key not in labels or (sep and labels[key] != value):
            return False
    return True


def _volume_mount(name: str, destination: str, read_only: bool = False) -> dict:
    return {
        "Type": "volume",
        "Name": name,
        "Source": f"/var/lib/docker/volumes/{name}/_data",
        "Destination": destination,
        "Driver": "local",
        "Mode": "z",
        "RW": not read_only,
        "Propagation": "",
    }


def _bind_mount(source: str, destination: str, mode: str = "") -> dict:
    return {
        "Type": "bind",
        "Source": source,
        "Destination": destination,
        "Mode": mode,
        "RW": "ro" not in mode.split(","),
        "Propagation": "rprivate",
    }


def _volume_mounts(names: Tuple[str, ...]) -> List[dict]:
    return [_volume_mount(name, f"/volumes/{name}") for name in names]


def _bind_mounts(binds: Tuple[str, ...]) -> List[dict]:
    return [_bind(bind) for bind in binds]


def _bind(spec: str) -> dict:
    """A `Binds` entry, "source:destination[:mode]": a host path, or a named volume."""
    source, destination, *mode = spec.split(":")
    if source.startswith("/"):
        return _bind_mount(source, destination, mode[0] if mode else "")
    read_only = bool(mode) and "ro" in mode[0].split(",")
    return _volume_mount(source, destination, read_only)


def _mount(mount: dict) -> dict:
    """A `Mounts` entry (docker.types.Mount)."""
    read_only = bool(mount.get("ReadOnly"))
    if mount.get("Type") == "bind":
        return {**_bind_mount(mount["Source"], mount["Target"]), "RW": not read_only}
    if mount.get("Type") != "volume":
        raise NotImplementedError(f"the fake engine does not model {mount.get('Type')} mounts")
    return _volume_mount(mount["Source"], mount["Target"], read_only)


def _cannot_stage(api, container, command) -> Tuple[int, str]:
    return 3, "the crane image has no GNU cp (--reflink)\n"
