"""Notifications: each [[notify]] target gets the events it asked for, through the module
of its kind (one per kind, all behind `send`). A target that cannot be reached is a
warning in the log, never a failed backup."""

from __future__ import annotations

import logging
import re
from importlib import import_module
from typing import Callable, Set

from salvage.config.checks import NOTIFY_KINDS
from salvage.report.notify import apprise, message
from salvage.report.notify.delivery import Undelivered, deliver, where
from salvage.report.notify.message import Event
from salvage.report.observers import Observer

log = logging.getLogger("salvage")

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# kind -> its module: the kinds are config's (NOTIFY_KINDS), a missing module fails here
KINDS = {kind: import_module(f"{__name__}.{kind.replace('-', '_')}") for kind in NOTIFY_KINDS}


def describe(target) -> str:
    """A target as the log names it: its name, or its kind and host, never its URL."""
    name = f'"{target.name}"' if target.name else f"{target.kind} at {where(target.url)}"
    if target.kind == "apprise" and not target.name:  # its URLs carry tokens where hosts go
        name = f"apprise {target.url.split('://', 1)[0]}://"
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], name)


def send(target, event: Event, cancelled: Callable[[], bool] = lambda: False) -> None:
    """Send an event to a target that wants it; a failure is logged, never raised, so that
    it never keeps the event from the other targets."""
    if event.name not in target.events:
        return
    if target.tides and event.data["tide"] not in target.tides:  # limited to some tides
        return
    try:
        if target.kind == "apprise":  # delivers through its own library
            apprise.send(target, event, cancelled)
            return
        request = KINDS[target.kind].request(target, event)
        if request is None:  # an event this kind does not take
            return
        deliver(request, target.timeout, target.retries, cancelled=cancelled)
    except Undelivered as error:
        log.warning("notify %s: %s not sent: %s", describe(target), event.name, error)
    except Exception as error:  # a bug of one kind's module: say so, without the URL
        log.warning(
            "notify %s: %s not sent: %s", describe(target), event.name, type(error).__name__
        )


class Notifier(Observer):
    def __init__(self, config) -> None:
        self.targets = config.notify
        self.told: Set[str] = set()  # volumes of this run already notified
        self._run = None

    def _send(self, event: Event) -> None:
        for target in self.targets:
            send(target, event, self._cancelled)

    def _cancelled(self) -> bool:
        """The run was interrupted (a signal, a shutdown): deliveries end at once."""
        return self._run is not None and self._run.result.interrupted is not None

    def tide_started(self, run, plan) -> None:
        self._run = run
        self.told.clear()
        self._send(message.tide_started(run, plan))

    def volume_done(self, run, result) -> None:
        self.told.add(result.volume)
        self._send(message.volume_done(run, result))
        if result.shrunk:
            self._send(message.volume_shrunk(run, result))

    def tide_done(self, run, result) -> None:
        for volume in result.volumes:  # those failed before their group ran, too
            if volume.volume not in self.told:
                self.volume_done(run, volume)
        self._send(message.tide_done(run, result))
