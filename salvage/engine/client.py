"""Connections to the Docker engine, and engine errors as one-line messages."""

from __future__ import annotations

import os
from typing import Optional

import docker
import requests
from docker.errors import APIError, DockerException

DEFAULT_TIMEOUT = 60.0


class EngineError(Exception):
    """The engine refused or failed a call; the message is one line for a person."""


def describe(error: Exception) -> str:
    if isinstance(error, APIError):
        return str(error.explanation or error).strip()
    if isinstance(error, requests.exceptions.Timeout):
        return "the Docker engine did not answer in time"
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


class Engine:
    """Two clients on the same engine: one for quick calls with a timeout, and one without
    a read timeout for calls that wait as long as a crane or command runs (logs, wait,
    exec); those get their own deadlines where they are made."""

    def __init__(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.address = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
        try:
            kwargs = docker.utils.kwargs_from_env()
            self.api = docker.APIClient(version="auto", timeout=timeout, **kwargs)
            self._kwargs = dict(kwargs, version=self.api.api_version)
        except DockerException as error:
            raise EngineError(
                f"cannot reach the Docker engine at {self.address}: {describe(error)}"
            ) from None

    def waiting_client(self, timeout: Optional[float]) -> docker.APIClient:
        return docker.APIClient(timeout=timeout, **self._kwargs)
