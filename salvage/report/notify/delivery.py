"""Sending one notification over HTTP (the standard library's urllib): a few tries with a
pause between them, and one line saying why when it did not go.

Each try has an overall deadline, not just a timeout on each socket read (a server that
answers one byte at a time would hold the run forever); `cancelled()` turning true (a
signal) ends the try at once. A URL's `user:password@` is sent as HTTP basic auth and never
appears in a message.
"""

from __future__ import annotations

import base64
import http.client
import re
import socket
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Callable, List, Mapping, Optional, Tuple
from urllib.parse import unquote, urlsplit, urlunsplit

from salvage import __version__
from salvage.errors import SalvageError

# Discord (behind Cloudflare) refuses urllib's default user agent.
USER_AGENT = f"salvage/{__version__}"
POLL = 0.1  # how often a try looks at its deadline and at `cancelled`
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


@dataclass(frozen=True)
class Request:
    url: str
    body: Optional[bytes]  # None: no body (a GET)
    headers: Mapping[str, str] = field(default_factory=dict)
    method: str = "POST"


def clip(text: str, limit: int) -> bytes:
    """At most `limit` bytes of UTF-8, cut between characters."""
    return text.encode()[:limit].decode("utf-8", "ignore").encode()


def header_text(text: str) -> str:
    """A header value: no control characters (a newline would end the header)."""
    return _CONTROL.sub(" ", text).strip()


def split_userinfo(url: str) -> Tuple[str, dict]:
    """The URL without `user:password@`, and the Authorization header it stands for."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url, {}
    userinfo, host = parts.netloc.rsplit("@", 1)
    user, _, password = userinfo.partition(":")
    token = base64.b64encode(f"{unquote(user)}:{unquote(password)}".encode()).decode()
    return urlunsplit(parts._replace(netloc=host)), {"Authorization": f"Basic {token}"}


def where(url: str) -> str:
    """A URL as a log may name it: its host and port, never its userinfo, path or query."""
    parts = urlsplit(url)
    return parts.netloc.rsplit("@", 1)[-1]


class Undelivered(SalvageError):
    """Why a notification did not go, in one line (never its URL: it holds tokens)."""


class _Cut(Exception):
    """The try's deadline passed, or it was cancelled."""


def _connections(live: List[socket.socket]):
    """urllib handlers whose connections' sockets are kept in `live`, so that a try can be cut short
    by shutting their sockets down from another thread."""

    def tracked(base: type) -> Any:
        class Connection(base):  # type: ignore[valid-type,misc]  # a base known at run time
            def connect(self) -> None:
                super().connect()
                live.append(self.sock)  # urllib drops self.sock once the answer begins

        return Connection

    class HTTP(urllib.request.HTTPHandler):
        def http_open(self, req):
            return self.do_open(tracked(http.client.HTTPConnection), req)

    class HTTPS(urllib.request.HTTPSHandler):
        def https_open(self, req):
            context = self._context  # type: ignore[attr-defined]  # the handler's, set by urllib
            return self.do_open(tracked(http.client.HTTPSConnection), req, context=context)

    return HTTP(), HTTPS()


def _try(sent: urllib.request.Request, timeout: float, cancelled: Callable[[], bool]) -> None:
    """One try, over within `timeout` seconds or as soon as `cancelled()`, however slowly
    the server answers."""
    live: List[socket.socket] = []
    done, cut = threading.Event(), threading.Event()

    def guard() -> None:
        deadline = time.monotonic() + timeout
        while not done.wait(POLL):
            if time.monotonic() >= deadline or cancelled():
                cut.set()
                for sock in list(live):
                    try:
                        sock.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                return

    threading.Thread(target=guard, name="notify-deadline", daemon=True).start()
    opener = urllib.request.build_opener(*_connections(live))
    try:
        with opener.open(sent, timeout=timeout) as response:
            while response.read(65536):
                if cut.is_set():
                    raise _Cut()
        if cut.is_set():
            raise _Cut()
    except urllib.error.HTTPError:
        raise
    except (OSError, http.client.HTTPException, ValueError):
        if cut.is_set():
            raise _Cut() from None
        raise
    finally:
        done.set()
        for sock in live:
            sock.close()


def _reason(error: Exception, timeout: float) -> str:
    reason = getattr(error, "reason", error)
    if isinstance(reason, (socket.timeout, TimeoutError)):
        return f"no answer within {timeout:g} s"
    if isinstance(reason, http.client.InvalidURL):
        return "not a valid URL"  # http.client's message quotes the URL
    return str(reason) or type(reason).__name__


def _waiter(cancelled: Callable[[], bool]) -> Callable[[float], None]:
    def wait(seconds: float) -> None:
        end = time.monotonic() + seconds
        while not cancelled() and time.monotonic() < end:
            time.sleep(min(POLL, max(0.0, end - time.monotonic())))

    return wait


def deliver(
    request: Request,
    timeout: float,
    retries: int,
    pause: Optional[Callable[[float], None]] = None,
    cancelled: Callable[[], bool] = lambda: False,
) -> None:
    """Send it, or raise Undelivered; `pause(n)` waits after the n-th failed try (by
    default n seconds, cut short by `cancelled`)."""
    url, auth = split_userinfo(request.url)
    headers = {"User-Agent": USER_AGENT, **request.headers, **auth}
    headers = {name: header_text(value) for name, value in headers.items()}
    if cancelled():  # sent after a signal (e.g. the tide's end): one try, to its deadline
        tries, cancelled = 1, lambda: False
    else:
        tries = retries + 1
    for attempt in range(1, tries + 1):
        try:
            sent = urllib.request.Request(url, request.body, headers, method=request.method)
            _try(sent, timeout, cancelled)
            return
        except _Cut:
            if cancelled():
                raise Undelivered("cut short: salvage is stopping") from None
            why = f"no answer within {timeout:g} s"
        except urllib.error.HTTPError as error:
            why = f"HTTP {error.code} {error.reason}"
            if error.code < 500 and error.code != 429:  # the target refused it: no retry
                raise Undelivered(why) from None
        except (OSError, http.client.HTTPException) as error:  # URLError, timeouts, resets
            why = _reason(error, timeout)
        except ValueError:  # e.g. a URL urllib cannot use; its message may quote the URL
            raise Undelivered("not a valid URL") from None
        if attempt < tries and not cancelled():
            (pause or _waiter(cancelled))(attempt)
        if cancelled():
            break
    raise Undelivered(f"{why} ({attempt} tr{'y' if attempt == 1 else 'ies'})")
