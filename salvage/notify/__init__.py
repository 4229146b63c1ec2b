"""Notifications: each [[notify]] target gets the events it asked for, through the module
of its kind (one per kind, all behind `send`). A target that cannot be reached is a
warning in the log, never a failed backup."""

from __future__ import annotations

import logging
from typing import Set
from urllib.parse import urlsplit

from salvage.notify import discord, healthchecks, message, ntfy, uptime_kuma, webhook
from salvage.notify.delivery import Undelivered, deliver
from salvage.notify.message import Event
from salvage.observers import Observer

log = logging.getLogger("salvage")

KINDS = {"discord": discord, "ntfy": ntfy, "webhook": webhook, "healthchecks": healthchecks,
         "uptime-kuma": uptime_kuma}  # fmt: skip


def describe(target) -> str:
    """A target as the log names it: its name, or its kind and host, never its URL."""
    return f'"{target.name}"' if target.name else f"{target.kind} at {urlsplit(target.url).netloc}"


def send(target, event: Event) -> None:
    """Send an event to a target that wants it; a failure is logged, not raised."""
    if event.name not in target.events:
        return
    if target.tides and event.data["tide"] not in target.tides:  # limited to some tides
        return
    request = KINDS[target.kind].request(target, event)
    if request is None:  # an event this kind does not take
        return
    try:
        deliver(request, target.timeout, target.retries)
    except Undelivered as error:
        log.warning("notify %s: %s not sent: %s", describe(target), event.name, error)


class Notifier(Observer):
    def __init__(self, config) -> None:
        self.targets = config.notify
        self.told: Set[str] = set()  # volumes of this run already notified

    def _send(self, event: Event) -> None:
        for target in self.targets:
            send(target, event)

    def tide_started(self, run, plan) -> None:
        self.told.clear()
        self._send(message.tide_started(run, plan))

    def volume_done(self, run, result) -> None:
        self.told.add(result.volume)
        self._send(message.volume_done(run, result))

    def tide_done(self, run, result) -> None:
        for volume in result.volumes:  # those failed before their group ran, too
            if volume.volume not in self.told:
                self.volume_done(run, volume)
        self._send(message.tide_done(run, result))
