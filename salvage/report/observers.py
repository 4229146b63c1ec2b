"""Observers: everything that follows a run from outside (log summary, notifications,
history, metrics, sd_notify, the inhibitor lock) without being part of it.

The run calls each hook on every observer, in order. An observer that fails is logged and
skipped: reporting never fails a backup. Each observer imports this module, never the
reverse: the command line (cli._observers) builds them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterable, List

from salvage.errors import SalvageError

if TYPE_CHECKING:  # pragma: no cover
    from salvage.config import Config, Crane, Tide
    from salvage.core.planning import Group, Plan
    from salvage.core.results import TideResult, VolumeResult

log = logging.getLogger("salvage")


class Veto(SalvageError):
    """Raised by an observer to stop a group before its containers are touched (e.g. a
    required inhibitor lock that cannot be had). The one exception that is not swallowed."""


@dataclass(frozen=True)
class RunView:
    """What an observer sees of a run: its facts, its result so far (`result`, filled in
    as the run goes), and one way to steer it: `abort(reason)`, which cuts the run short
    as a signal does (its containers are put back)."""

    config: Config
    tide: Tide
    crane: Crane
    run_id: str
    result: TideResult
    abort: Callable[[str], None]


class Observer:
    """Every hook is optional; `run` is a RunView."""

    def tide_started(self, run, plan: Plan) -> None: ...

    def group_started(self, run, number: int, total: int, group: Group) -> None: ...

    def containers_leaving(self, run, group: Group) -> None:
        """Just before the first container of the group leaves its running state."""

    def containers_back(self, run, group: Group) -> None:
        """Every container of the group is back (or recorded for recovery)."""

    def volume_started(self, run, volume: str) -> None: ...

    def volume_done(self, run, result: VolumeResult) -> None: ...

    def group_done(self, run, group: Group, downtime: float) -> None: ...

    def crane_action(self, run, action: str) -> None:
        """A tide-wide crane action (init, retention) is about to run."""

    def tide_done(self, run, result: TideResult) -> None: ...


class Observers(Observer):
    def __init__(self, observers: Iterable[Observer] = ()) -> None:
        self.observers: List[Observer] = list(observers)

    def _call(self, hook: str, *args) -> None:
        for observer in self.observers:
            try:
                getattr(observer, hook)(*args)
            except Veto:
                raise
            except Exception as error:  # never let reporting fail a backup
                log.warning("%s: %s failed: %s", type(observer).__name__, hook, error)

    def tide_started(self, *args) -> None:
        self._call("tide_started", *args)

    def group_started(self, *args) -> None:
        self._call("group_started", *args)

    def containers_leaving(self, *args) -> None:
        self._call("containers_leaving", *args)

    def containers_back(self, *args) -> None:
        self._call("containers_back", *args)

    def volume_started(self, *args) -> None:
        self._call("volume_started", *args)

    def volume_done(self, *args) -> None:
        self._call("volume_done", *args)

    def group_done(self, *args) -> None:
        self._call("group_done", *args)

    def crane_action(self, *args) -> None:
        self._call("crane_action", *args)

    def tide_done(self, *args) -> None:
        self._call("tide_done", *args)
