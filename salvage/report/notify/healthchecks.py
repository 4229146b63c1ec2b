"""Healthchecks-style ping URLs (healthchecks.io, or a server of one's own; Uptime Kuma has
a kind of its own, uptime_kuma): the check's URL on success, URL/start when a tide starts,
URL/fail when it fails, with the message as the body, which the server keeps with the ping.
A check follows whole tides: volume events do not apply."""

from __future__ import annotations

from typing import Optional

from salvage.report.notify.delivery import Request, clip
from salvage.report.notify.message import Event

SUFFIX = {"tide.start": "/start", "tide.success": "", "tide.failure": "/fail"}
LIMIT = 100_000  # healthchecks.io keeps this much of a ping's body


def request(target, event: Event) -> Optional[Request]:
    if event.name not in SUFFIX:
        return None
    url = target.url.rstrip("/") + SUFFIX[event.name]
    return Request(url, clip(event.text, LIMIT), {"Content-Type": "text/plain; charset=utf-8"})
