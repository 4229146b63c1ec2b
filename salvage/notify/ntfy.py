"""ntfy: the topic's URL (https://ntfy.sh/<topic>, or a server of one's own). The first
line is the title, the details are the message; failures come with high priority."""

from __future__ import annotations

from email.header import Header
from typing import Optional

from salvage.notify.delivery import Request, clip
from salvage.notify.message import Event

LIMIT = 4096  # longer messages become attachments

TAGS = {"tide.start": "arrow_forward", "tide.success": "white_check_mark",
        "volume.success": "white_check_mark"}  # fmt: skip


def _header(text: str) -> str:
    # HTTP headers are Latin-1; ntfy decodes RFC 2047 for anything else.
    try:
        text.encode("latin-1")
        return text
    except UnicodeEncodeError:
        return Header(text, "utf-8").encode()


def request(target, event: Event) -> Optional[Request]:
    headers = {
        "Title": _header(event.title),
        "Tags": TAGS.get(event.name, "rotating_light"),
        "Priority": "high" if event.failure else "default",
        "Content-Type": "text/plain; charset=utf-8",
    }
    return Request(target.url, clip(event.details or event.title, LIMIT), headers)
