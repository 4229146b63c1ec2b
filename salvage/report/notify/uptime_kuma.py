"""Uptime Kuma push monitors: the monitor's push URL (https://kuma.example/api/push/<token>,
with or without the `?status=up&msg=OK&ping=` Uptime Kuma shows). A GET when a tide ends:
`status=up&msg=OK` when it succeeded, `status=down&msg=<the first line>` when it failed.
A monitor follows whole tides' results: starts and volume events do not apply."""

from __future__ import annotations

from typing import Optional
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

from salvage.report.notify.delivery import Request, clip
from salvage.report.notify.message import Event

STATUS = {"tide.success": "up", "tide.failure": "down"}
EVENTS = tuple(STATUS)
LIMIT = 1000  # bytes of the message in the URL: the first line says what failed and why


def request(target, event: Event) -> Optional[Request]:
    if event.name not in STATUS:
        return None
    text = "OK" if event.name == "tide.success" else clip(event.title, LIMIT).decode()
    query = urlencode({"status": STATUS[event.name], "msg": text, "ping": ""}, quote_via=quote)
    parts = urlsplit(target.url)  # the URL's own query is Uptime Kuma's example: replaced
    return Request(
        urlunsplit((parts.scheme, parts.netloc, parts.path, query, "")), None, {}, method="GET"
    )
