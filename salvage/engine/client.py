"""Connections to the Docker engine, and engine errors as one-line messages."""

from __future__ import annotations

import logging
import os
import re
import time
from typing import Callable, TypeVar
from urllib.parse import urlsplit

import docker
import requests
from docker.errors import APIError, DockerException

DEFAULT_TIMEOUT = 60.0
DEFAULT_RETRIES = 5
T = TypeVar("T")
log = logging.getLogger("salvage")


class EngineError(Exception):
    """The engine refused or failed a call; the message is one line for a person."""


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
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


class Engine:
    """Connections to one engine: `api` for calls that answer quickly (with a timeout), and
    `unbounded()` clients for streams that last as long as a crane runs (its logs, its
    wait); those get their own deadlines where they are used."""

    def __init__(self, timeout: float = DEFAULT_TIMEOUT, retries: int = DEFAULT_RETRIES) -> None:
        self.retries = retries
        self.address = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
        try:
            kwargs = docker.utils.kwargs_from_env()
            self.api = docker.APIClient(version="auto", timeout=timeout, **kwargs)
            self._kwargs = dict(kwargs, version=self.api.api_version)
        except DockerException as error:
            raise EngineError(
                f"cannot reach the Docker engine at {self.address}: {describe(error)}"
            ) from None

    def unbounded(self) -> docker.APIClient:
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
                log.warning(
                    "Docker engine unreachable (%s); again in %.1f s", describe(error), delay
                )
                time.sleep(delay)
                delay = min(delay * 2, 10.0)
        raise AssertionError("unreachable")
