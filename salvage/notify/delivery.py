"""Sending one notification over HTTP (the standard library's urllib): a timeout on each
try, a few tries with a pause between them, and one line saying why when it did not go."""

from __future__ import annotations

import http.client
import socket
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Callable, Mapping, Optional

from salvage import __version__

# Discord (behind Cloudflare) refuses urllib's default user agent.
USER_AGENT = f"salvage/{__version__}"


@dataclass(frozen=True)
class Request:
    url: str
    body: Optional[bytes]  # None: no body (a GET)
    headers: Mapping[str, str] = field(default_factory=dict)
    method: str = "POST"


def clip(text: str, limit: int) -> bytes:
    """At most `limit` bytes of UTF-8, cut between characters."""
    return text.encode()[:limit].decode("utf-8", "ignore").encode()


class Undelivered(Exception):
    """Why a notification did not go, in one line (never its URL: it holds tokens)."""


def _reason(error: Exception, timeout: float) -> str:
    reason = getattr(error, "reason", error)
    if isinstance(reason, (socket.timeout, TimeoutError)):
        return f"no answer within {timeout:g} s"
    return str(reason) or type(reason).__name__


def deliver(
    request: Request, timeout: float, retries: int, pause: Callable[[float], None] = time.sleep
) -> None:
    headers = {"User-Agent": USER_AGENT, **request.headers}
    tries = retries + 1
    for attempt in range(1, tries + 1):
        sent = urllib.request.Request(request.url, request.body, headers, method=request.method)
        try:
            with urllib.request.urlopen(sent, timeout=timeout) as response:
                response.read()
            return
        except urllib.error.HTTPError as error:
            why = f"HTTP {error.code} {error.reason}"
            if error.code < 500 and error.code != 429:  # the target refused it: no retry
                raise Undelivered(why) from None
        except (OSError, http.client.HTTPException) as error:  # URLError, timeouts, resets
            why = _reason(error, timeout)
        if attempt < tries:
            pause(attempt)
    raise Undelivered(f"{why} ({tries} tries)")
