"""Connections to the Docker engine, and engine errors as one-line messages."""

from __future__ import annotations

import errno
import logging
import os
import re
import time
from typing import Callable, Optional, TypeVar
from urllib.parse import urlsplit

import docker
import requests
from docker.errors import APIError, DockerException

from salvage.config.schema import Docker
from salvage.errors import SalvageError

DEFAULTS = Docker()  # [docker] timeout and retries, as the configuration defaults them
T = TypeVar("T")
log = logging.getLogger("salvage")


class EngineError(SalvageError):
    """The engine refused or failed a call; the message is one line for a person."""

    def lines(self) -> list:
        return [describe(self)]


def address() -> str:
    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


def _os_error(error: BaseException, seen: int = 0) -> Optional[OSError]:
    """The OSError under docker-py's and requests' wrappers (causes, contexts, args)."""
    if isinstance(error, OSError) and error.errno is not None:
        return error
    if seen > 8:
        return None
    inner = [error.__cause__, error.__context__, *getattr(error, "args", ())]
    for item in inner:
        if isinstance(item, BaseException):
            found = _os_error(item, seen + 1)
            if found is not None:
                return found
    return None


def unreachable(error: BaseException) -> Optional[str]:
    """A failed connection to the engine as one line with its likely fix; None if the
    error is something else."""
    found = _os_error(error)
    if found is None:
        return None
    where = f"cannot reach the Docker engine at {address()}"
    if found.errno in (errno.ENOENT, errno.ECONNREFUSED):
        what = "no socket there" if found.errno == errno.ENOENT else "nothing answers there"
        return (
            f"{where}: {what}: is the engine running (sudo systemctl start docker)?"
            " Otherwise set DOCKER_HOST to its address"
        )
    if found.errno in (errno.EACCES, errno.EPERM) and os.geteuid() != 0:
        return (
            f"{where}: permission denied: this user is neither root nor in the group docker:"
            " run salvage with sudo, or join the group (sudo usermod -aG docker $USER, then"
            " log in again), or set DOCKER_HOST to an engine this user may use"
        )
    return f"{where}: {os.strerror(found.errno).lower() if found.errno else found}"


def describe(error: Exception) -> str:
    if isinstance(error, APIError) and error.status_code == 403:
        request = getattr(error.response, "request", None)
        what = "the call"
        if request is not None:
            path = re.sub(r"^/v[0-9.]+/", "/", urlsplit(request.url).path)
            what = f"{request.method} {path}"
        return (
            f"the Docker engine refused {what} (403 Forbidden): does a socket proxy in front"
            " of it allow this call? (see docs/docker-api.md)"
        )
    if isinstance(error, APIError):
        return str(error.explanation or error).strip()
    # Over a unix socket a read timeout arrives as a ConnectionError("... Read timed out.")
    if isinstance(error, requests.exceptions.Timeout) or "timed out" in str(error):
        return "the Docker engine did not answer in time"
    if isinstance(error, (requests.exceptions.ConnectionError, DockerException)):
        line = unreachable(error)
        if line:
            return line
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


class Engine:
    """Connections to one engine: `api` for calls that answer quickly (with a timeout), and
    `unbounded()` clients for streams that last as long as a crane runs (its logs, its
    wait); those get their own deadlines where they are used."""

    def __init__(
        self, timeout: float = DEFAULTS.timeout, retries: int = DEFAULTS.retries, api=None
    ) -> None:
        """`api`: an APIClient made elsewhere (unit tests: tests/support/fake_engine.py),
        used for the quick calls and the streams alike."""
        self.retries = retries
        self.address = address()
        self._kwargs: Optional[dict] = None
        if api is not None:
            self.api = api
            return
        try:
            kwargs = docker.utils.kwargs_from_env()
            self.api = docker.APIClient(version="auto", timeout=timeout, **kwargs)
            self._kwargs = dict(kwargs, version=self.api.api_version)
        except DockerException as error:
            line = describe(error)
            if not line.startswith("cannot reach"):
                line = f"cannot reach the Docker engine at {self.address}: {line}"
            raise EngineError(line) from None

    def unbounded(self) -> docker.APIClient:
        if self._kwargs is None:  # a client made elsewhere
            return self.api
        return docker.APIClient(timeout=None, **self._kwargs)

    def retry(self, call: Callable[..., T], *args) -> T:
        """`call(*args)`, again while the engine cannot be reached (restarting, frozen),
        up to `retries` times with a growing pause; then the last error is raised."""
        delay = 0.5
        for attempt in range(self.retries + 1):
            try:
                return call(*args)
            # A frozen engine answers nothing: a timeout is retried like a refused connection.
            except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as error:
                if attempt == self.retries:
                    raise
                cause = _os_error(error)  # mid-run: the engine restarting, most likely
                why = os.strerror(cause.errno) if cause and cause.errno else describe(error)
                log.warning("Docker engine unreachable (%s); again in %.1f s", why, delay)
                time.sleep(delay)
                delay = min(delay * 2, 10.0)
        raise AssertionError("unreachable")
