"""A generic JSON webhook: the event's data as a JSON object, or, with a `template`, a body
of one's own, e.g. '{"text": "$message", "failed": $volumes_failed}'.

A placeholder is `$name` or `${name}` (`$$` is a dollar sign), any of message.FIELDS. Each
is filled in as JSON: text without its quotes, so it belongs inside a JSON string; a
number, true/false/null, a list as themselves; `$data` is all of it, as one object.
"""

from __future__ import annotations

import json
from string import Template
from typing import Optional

from salvage.report.notify import message
from salvage.report.notify.delivery import Request
from salvage.report.notify.message import Event

HEADERS = {"Content-Type": "application/json"}


def render(template: str, data: dict) -> str:
    values = {}
    for key, value in data.items():
        encoded = json.dumps(value, ensure_ascii=False)
        values[key] = encoded[1:-1] if isinstance(value, str) else encoded
    values["data"] = json.dumps(data, ensure_ascii=False)
    return Template(template).substitute(values)


def check(template: str) -> Optional[str]:
    """Why the template would not make a JSON body, in one line; None if it does."""
    try:
        json.loads(render(template, message.sample().data))
    except KeyError as error:
        return f"${error.args[0]} is not a field ({', '.join(message.FIELDS)}, data)"
    except ValueError as error:  # a stray $, or not JSON once filled in
        return f"not JSON once filled in: {error}"
    return None


def request(target, event: Event) -> Optional[Request]:
    if target.template:
        body = render(target.template, event.data)
    else:
        body = json.dumps(event.data, ensure_ascii=False)
    return Request(target.url, body.encode(), HEADERS)
