"""Apprise (https://github.com/caronc/apprise, Debian's `apprise`): any of its services by
its URL (`discord://...`, `mailto://...`, `tgram://...`, `json://host/path`...). Apprise
delivers by itself, so this kind sends rather than building an HTTP request: each try in a
thread of its own, given up after the target's timeout or when the run is cancelled.

The module is optional: without it, a target of this kind is one configuration problem.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable, Optional

from salvage.report.notify.delivery import POLL, Undelivered
from salvage.report.notify.message import Event

MISSING = (
    "needs the Python module apprise, which is not installed (Debian, Ubuntu: apt install"
    " apprise; elsewhere: pip install apprise in salvage's environment)"
)


def _module():
    import apprise  # absolute: the library, not this module

    return apprise


def check(url: str) -> Optional[str]:
    """Why this target cannot work, in one line; None when Apprise takes the URL."""
    try:
        apprise = _module()
    except ImportError:
        return MISSING
    if not apprise.Apprise().add(url):
        return "not a URL that Apprise knows (see its list of services)"
    return None


def request(target, event: Event) -> None:
    return None  # Apprise sends by itself: see send()


def _notify(sender, event: Event, kind, done: list) -> None:
    done.append(
        sender.notify(body=event.details or event.title, title=event.title, notify_type=kind)
    )


def send(target, event: Event, cancelled: Callable[[], bool] = lambda: False) -> None:
    """Deliver the event, with the target's retries; Undelivered says why it did not go."""
    apprise = _module()
    sender = apprise.Apprise()
    if not sender.add(target.url):
        raise Undelivered("not a URL that Apprise knows")
    kind = apprise.NotifyType.FAILURE if event.failure else apprise.NotifyType.SUCCESS
    if event.name in ("tide.start", "volume.shrunk"):
        kind = apprise.NotifyType.INFO if event.name == "tide.start" else apprise.NotifyType.WARNING
    why = "no answer"
    for attempt in range(target.retries + 1):
        if attempt:
            time.sleep(min(2.0**attempt, 10.0))
        if cancelled():
            raise Undelivered("cancelled")
        done: list = []
        thread = threading.Thread(
            target=_notify, args=(sender, event, kind, done), name="apprise", daemon=True
        )
        # Apprise logs each failure under its own logger: keep its lines (and URLs) quiet.
        logging.getLogger("apprise").setLevel(logging.CRITICAL)
        thread.start()
        deadline = time.monotonic() + target.timeout
        while thread.is_alive() and time.monotonic() < deadline and not cancelled():
            thread.join(POLL)
        if done and done[0]:
            return
        why = "Apprise could not deliver it" if done else f"no answer in {target.timeout:g} s"
    raise Undelivered(f"{why} ({target.retries + 1} tries)")
