"""sd_notify: tell systemd what the run is doing (`systemctl status`), that it is alive (the
watchdog), and that it is stopping. Silent without NOTIFY_SOCKET.

The sdnotify package finds and connects the socket; the messages are encoded here, as
UTF-8, and sent on its socket: sdnotify 0.3 encodes them as Latin-1, which mangles or drops
non-ASCII volume and tide names.

The watchdog is fed only while the run makes progress: each step announces how long it may
take at most (Status, below), and a run that goes quiet for longer is left to systemd's
watchdog, which kills it; the unit's ExecStopPost= then restores the containers.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Callable, Optional

import sdnotify

from salvage.report.observers import Observer

log = logging.getLogger("salvage")

PREFLIGHT = 600.0  # seconds allowed before the configuration says more
TICK = 0.25  # how often the heartbeat looks at the run
EXTEND_EVERY = 5.0  # while restoring containers after an interruption...
EXTEND_BY = 30.0  # ...the stop timeout is pushed this far ahead, again and again
RETRY_PAUSE = 10.0  # the longest pause between two attempts at a Docker call


def _watchdog_interval() -> Optional[float]:
    """Half of WATCHDOG_USEC, when the watchdog is meant for this process."""
    usec, pid = os.environ.get("WATCHDOG_USEC", ""), os.environ.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0 or (pid.isdigit() and int(pid) != os.getpid()):
        return None
    return int(usec) / 2e6


class Service:
    """This process's line to the service manager."""

    def __init__(self) -> None:
        self._socket = (
            sdnotify.SystemdNotifier().socket if os.environ.get("NOTIFY_SOCKET") else None
        )
        self.watchdog = _watchdog_interval() if self._socket else None
        self.errno: Optional[int] = None  # sent with the exit status on failure
        self._guard = threading.Lock()
        self._due = time.monotonic() + PREFLIGHT  # the next sign of progress is due by then
        self.down = False  # containers are out of their running state right now
        self._interrupted: Optional[Callable[[], Optional[str]]] = None
        self._on_interrupt: Optional[Callable[[str], None]] = None
        self._done = threading.Event()
        if self._socket is not None:
            threading.Thread(target=self._beat, name="sd_notify", daemon=True).start()

    @property
    def active(self) -> bool:
        return self._socket is not None

    def send(self, *fields: str) -> None:
        if self._socket is None:
            return
        try:
            self._socket.send("\n".join(fields).encode("utf-8"))
        except OSError as error:  # systemd went away: nothing to tell
            log.debug("sd_notify: %s", error)

    def status(self, text: str) -> None:
        self.send(f"STATUS={text}")

    def ready(self, text: str) -> None:
        self.allow(PREFLIGHT)  # until the first tide starts: recovering an earlier run
        self.send("READY=1", f"STATUS={text}")

    def waiting(self, text: str, timeout: float) -> None:
        """Waiting for another run: up to `timeout`, which may outlast the start timeout."""
        self.allow(timeout + PREFLIGHT)
        self.send(f"STATUS={text}", f"EXTEND_TIMEOUT_USEC={int((timeout + PREFLIGHT) * 1e6)}")

    def allow(self, seconds: float, at_least: bool = False) -> None:
        """The next sign of progress is due within `seconds` (or later, with at_least)."""
        with self._guard:
            due = time.monotonic() + seconds
            self._due = max(self._due, due) if at_least else due

    def watch(
        self,
        interrupted: Optional[Callable[[], Optional[str]]],
        on_interrupt: Optional[Callable[[str], None]] = None,
    ) -> None:
        """While set, `interrupted()` says why the run was cut short (None: it was not);
        then `on_interrupt(reason)` is called once, and the stop timeout is extended for as
        long as the restore makes progress."""
        with self._guard:
            self._interrupted, self._on_interrupt = interrupted, on_interrupt

    def stopping(self, code: int) -> None:
        self._done.set()
        fields = ["STOPPING=1"]
        if code:
            fields.append(f"EXIT_STATUS={code}")
            if self.errno:
                fields.append(f"ERRNO={self.errno}")
        self.send(*fields)

    def __enter__(self) -> Service:
        return self

    def __exit__(self, kind, error, _traceback) -> None:
        if kind is None:
            self.stopping(0)
        elif issubclass(kind, SystemExit):
            code = error.code
            self.stopping(code if isinstance(code, int) else 0 if code is None else 1)
        else:
            self.stopping(1)

    def _beat(self) -> None:
        next_ping = next_extend = time.monotonic()
        stalled = False
        reason: Optional[str] = None
        while not self._done.is_set():
            now = time.monotonic()
            with self._guard:
                moving = now < self._due
                interrupted, on_interrupt = self._interrupted, self._on_interrupt
            if not moving and not stalled:
                log.warning(
                    "no progress in the time its current step may take: the watchdog"
                    " is no longer fed"
                )
            stalled = not moving
            if self.watchdog and moving and now >= next_ping:
                self.send("WATCHDOG=1")
                next_ping = now + self.watchdog
            why = interrupted() if interrupted else None
            if why and why != reason:
                if on_interrupt:
                    on_interrupt(why)
                self.send("STOPPING=1")
                next_extend = now
            reason = why
            if why and moving and self.down and now >= next_extend:
                # Restoring the containers may outlast the unit's stop timeout; once they
                # are back, nothing may (a notification is cut short by the signal).
                self.send(f"EXTEND_TIMEOUT_USEC={int(EXTEND_BY * 1e6)}")
                next_extend = now + EXTEND_EVERY
            wait = TICK
            if self.watchdog and moving:
                wait = min(TICK, max(0.001, next_ping - time.monotonic()))
            self._done.wait(wait)


_service: Optional[Service] = None
_service_guard = threading.Lock()


def service() -> Service:
    """The one Service of this process (the command line and the observers share it)."""
    global _service
    with _service_guard:
        if _service is None:
            _service = Service()
        return _service


class Status(Observer):
    """STATUS= at each step of a run, and how long each step may take (for the watchdog):
    a Docker call with all its retries, plus a pre/post command; a crane up to its timeout."""

    def __init__(self, service: Service, config) -> None:
        self.service = service
        docker = config.docker
        self.call = (docker.timeout + RETRY_PAUSE) * (docker.retries + 1)
        self.where = ""
        self.volumes = self.started = self.workers = self.down = 0  # of the current group

    def _step(self, run) -> float:
        return self.call + run.tide.command_timeout

    def _status(self, text: str) -> None:
        self.service.status(f"{self.where}: {text}")

    def tide_started(self, run, plan) -> None:
        self.where = f"tide {run.tide.name}"
        self.service.allow(self._step(run))
        volumes = sum(len(group.volumes) for group in plan.groups)
        self._status(f"{_count(len(plan.groups), 'group')}, {_count(volumes, 'volume')} to back up")

        def interrupted(reason: str) -> None:  # called from the heartbeat thread
            self.service.allow(self._step(run) * max(1, self.down))
            doing = "restoring containers" if self.service.down else "finishing"
            self.service.status(f"tide {run.tide.name}: interrupted ({reason}): {doing}")

        self.down = 0
        self.service.watch(lambda: run.result.interrupted, interrupted)

    def group_started(self, run, number: int, total: int, group) -> None:
        self.where = f"tide {run.tide.name}, group {number}/{total} {group.name}"
        self.volumes, self.started, self.down = len(group.volumes), 0, len(group.steps)
        self.workers = min(run.tide.max_concurrent, run.crane.max_concurrent, self.volumes)
        self.service.allow(self._step(run) * max(1, len(group.steps)))
        self._status(f"getting ready, 0 of {self.volumes} volumes done")

    def containers_leaving(self, run, group) -> None:
        self.service.down = True
        self.service.allow(self._step(run) * max(1, len(group.steps)))
        self._status("stopping or pausing containers")

    def volume_started(self, run, volume: str) -> None:
        # A pool of `workers` cranes: each start after the first ones follows an end.
        self.started += 1
        done = max(0, self.started - self.workers)
        self.service.allow(run.tide.crane_timeout + self._step(run), at_least=True)
        self._status(
            f"backing up {volume} (crane {run.crane.name}), {done} of {self.volumes} volumes done"
        )

    def containers_back(self, run, group) -> None:
        self.service.down = False
        self.service.allow(self._step(run) * max(1, len(group.steps)))
        if run.result.interrupted:
            self._status(f"interrupted ({run.result.interrupted}): containers back")
        else:
            self._status(f"containers back, {self.volumes} of {self.volumes} volumes done")

    def group_done(self, run, group, downtime: float) -> None:
        self.service.allow(self._step(run))
        self._status(f"done, containers were down {downtime:.1f} s")

    def crane_action(self, run, action: str) -> None:
        self.service.allow(run.tide.crane_timeout + self._step(run), at_least=True)
        self.service.status(f"tide {run.tide.name}: crane {run.crane.name}: {action}")

    def tide_done(self, run, result) -> None:
        self.service.watch(None)
        self.service.allow(self._step(run))
        self.service.status(result.summary())


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'s' * (n != 1)}"
