"""Discord: a webhook URL (Server settings, Integrations, Webhooks); the message as its
`content`, which Discord cuts at 2000 characters."""

from __future__ import annotations

import json
from typing import Optional

from salvage.report.notify.delivery import Request
from salvage.report.notify.message import Event

LIMIT = 2000


def request(target, event: Event) -> Optional[Request]:
    text = event.text if len(event.text) <= LIMIT else event.text[: LIMIT - 1] + "…"
    body = {
        "content": text,
        "username": "salvage",
        "allowed_mentions": {"parse": []},  # a volume named "@everyone" pings nobody
    }
    return Request(target.url, json.dumps(body).encode(), {"Content-Type": "application/json"})
