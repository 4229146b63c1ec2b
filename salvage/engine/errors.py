"""The engine's exceptions, in docker-py's own names: the rest of salvage catches these
from here, so that only `salvage.engine` imports docker-py (and requests under it)."""

from __future__ import annotations

from docker.errors import APIError, DockerException, ImageNotFound, NotFound
from requests.exceptions import RequestException

# Everything a call to the engine may raise for the engine's sake (not salvage's own bugs).
ENGINE_ERRORS = (DockerException, RequestException)

__all__ = [
    "APIError",
    "DockerException",
    "ENGINE_ERRORS",
    "ImageNotFound",
    "NotFound",
    "RequestException",
    "from_engine",
]


def from_engine(error: BaseException) -> bool:
    """Raised by docker-py or the HTTP libraries under it."""
    return type(error).__module__.split(".")[0] in ("docker", "requests", "urllib3")
