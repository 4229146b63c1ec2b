"""ntfy: the topic's URL (https://ntfy.sh/<topic>, or a server of one's own). The first
line is the title, the details are the message; failures come with high priority."""

from __future__ import annotations

import base64
from typing import Optional

from salvage.report.notify.delivery import Request, clip, header_text
from salvage.report.notify.message import Event

LIMIT = 4096  # longer messages become attachments

TAGS = {
    "tide.start": "arrow_forward",
    "tide.success": "white_check_mark",
    "volume.success": "white_check_mark",
}


def _header(text: str) -> str:
    """A title as an HTTP header: no control characters, and anything but ASCII as RFC 2047
    encoded words, which ntfy decodes (raw UTF-8 or Latin-1 bytes would show garbled).
    Words of at most 45 bytes, joined by spaces, never folded onto a second line."""
    text = header_text(text)
    if text.isascii():
        return text
    words, word = [], b""
    for char in text:
        encoded = char.encode("utf-8")
        if len(word) + len(encoded) > 45:
            words.append(word)
            word = b""
        word += encoded
    words.append(word)
    return " ".join(f"=?UTF-8?B?{base64.b64encode(w).decode()}?=" for w in words)


def request(target, event: Event) -> Optional[Request]:
    headers = {
        "Title": _header(event.title),
        "Tags": TAGS.get(event.name, "rotating_light"),
        "Priority": "high" if event.failure else "default",
        "Content-Type": "text/plain; charset=utf-8",
    }
    return Request(target.url, clip(event.details or event.title, LIMIT), headers)
