"""The logind inhibitor lock: the host does not shut down or sleep while containers are down.

- A `block` lock from just before the first container of a group leaves its running state
  until every one is back.
- A `delay` lock for the whole tide. Its PrepareForShutdown/PrepareForSleep(true) signal
  interrupts the run (the cranes are killed, the containers restored), then the lock is let
  go so that the shutdown proceeds. Needed because up to systemd 256 root's own
  `systemctl poweroff` ignores block locks.

No system bus, no logind, access denied: the run goes on, unless `[inhibit] required =
true`; then no group is touched (Veto). Said once: a warning under systemd, where timers
run backups on hosts that do shut down and sleep; a notice (info) otherwise, as at a
terminal on a host without a system bus, where it would only be noise on every run.

dbus-next needs an asyncio loop: it runs in a thread of its own, and every call has a
timeout (dbus-next has none). The lock's file descriptor is never inherited by children.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import threading
from typing import Callable, Optional

from dbus_next import BusType, Message, MessageType
from dbus_next.aio import MessageBus

from salvage.errors import SalvageError
from salvage.report.observers import Observer, Veto

log = logging.getLogger("salvage")

TIMEOUT = 10.0  # seconds for any D-Bus call
LOGIND = "org.freedesktop.login1"
PATH = "/org/freedesktop/login1"
MANAGER = "org.freedesktop.login1.Manager"
PREPARE = {"PrepareForShutdown": "shutdown", "PrepareForSleep": "sleep"}
DELAYABLE = ("shutdown", "sleep")  # what a delay lock can hold off
VERB = {"shutdown": "shut down", "sleep": "sleep"}
DEFAULT_BUS = "unix:path=/var/run/dbus/system_bus_socket"


def under_systemd() -> bool:
    """Started by systemd (a unit sets INVOCATION_ID; Type=notify, NOTIFY_SOCKET)."""
    return bool(os.environ.get("INVOCATION_ID") or os.environ.get("NOTIFY_SOCKET"))


class Unavailable(SalvageError):
    """No lock to be had; the message is one line."""


class Logind:
    """A connection to logind on the system bus, served by an event loop in its own thread.
    `on_prepare(what, starting)` is called (in that thread) on PrepareForShutdown/Sleep."""

    def __init__(self, on_prepare: Callable[[str, bool], None]) -> None:
        self.on_prepare = on_prepare
        self._loop = asyncio.new_event_loop()
        # Whatever dbus-next leaves unretrieved is one line at debug, never a traceback.
        self._loop.set_exception_handler(
            lambda _loop, context: log.debug(
                "D-Bus: %s", context.get("exception") or context.get("message")
            )
        )
        threading.Thread(target=self._loop.run_forever, name="logind", daemon=True).start()
        try:
            self._bus = self._wait(self._connect())
        except Exception:
            self.close()
            raise

    def inhibit(self, what: str, why: str, mode: str) -> int:
        """Take a lock; its file descriptor (close it to release the lock)."""
        return self._wait(self._inhibit(what, why, mode))

    def close(self) -> None:
        async def disconnect() -> None:
            bus = getattr(self, "_bus", None)
            if bus is not None:
                try:
                    bus.disconnect()
                except OSError:  # the bus is gone already
                    pass

        if self._loop.is_running():
            asyncio.run_coroutine_threadsafe(disconnect(), self._loop).result(TIMEOUT)
            self._loop.call_soon_threadsafe(self._loop.stop)

    def _wait(self, coroutine):
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        try:
            return future.result(TIMEOUT + 1)  # the calls time out first: a hung loop here
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise Unavailable(f"D-Bus did not answer within {TIMEOUT:.0f} s") from None

    async def _connect(self) -> MessageBus:
        try:
            # Without negotiate_unix_fd, Inhibit's reply (a file descriptor) never arrives.
            bus = MessageBus(bus_type=BusType.SYSTEM, negotiate_unix_fd=True)  # connects
            await asyncio.wait_for(bus.connect(), TIMEOUT)
        except asyncio.TimeoutError:
            raise Unavailable(f"the system bus did not answer within {TIMEOUT:.0f} s") from None
        except OSError as error:
            address = os.environ.get("DBUS_SYSTEM_BUS_ADDRESS", DEFAULT_BUS)
            raise Unavailable(f"no system bus at {address}: {error.strerror or error}") from None
        except Exception as error:  # dbus-next's own: a malformed address, a refused login
            raise Unavailable(f"cannot use the system bus: {error}") from None
        self._bus = bus
        asyncio.ensure_future(self._until_disconnected(bus))
        bus.add_message_handler(self._on_message)
        for member in PREPARE:
            rule = (
                f"type='signal',sender='{LOGIND}',path='{PATH}',interface='{MANAGER}',"
                f"member='{member}'"
            )
            await self._call(
                Message(
                    destination="org.freedesktop.DBus",
                    path="/org/freedesktop/DBus",
                    interface="org.freedesktop.DBus",
                    member="AddMatch",
                    signature="s",
                    body=[rule],
                ),
            )
        return bus

    @staticmethod
    async def _until_disconnected(bus: MessageBus) -> None:
        """The bus going away (dbus stopped first at shutdown: EOFError) ends the connection
        quietly: a lock already taken is a file descriptor and holds without it."""
        try:
            await bus.wait_for_disconnect()
        except Exception as error:
            log.debug("the system bus closed the connection (%s)", type(error).__name__)

    async def _call(self, message: Message) -> Message:
        try:
            reply = await asyncio.wait_for(self._bus.call(message), TIMEOUT)
        except asyncio.TimeoutError:
            raise Unavailable(f"{message.member}: no answer within {TIMEOUT:.0f} s") from None
        if reply.message_type == MessageType.ERROR:
            text = reply.body[0] if reply.body else ""
            raise Unavailable(f"{message.member}: {reply.error_name}: {text}".rstrip(": "))
        return reply

    async def _inhibit(self, what: str, why: str, mode: str) -> int:
        message = Message(
            destination=LOGIND,
            path=PATH,
            interface=MANAGER,
            member="Inhibit",
            signature="ssss",
            body=[what, "salvage", why, mode],
        )
        reply = await self._call(message)
        fds = list(reply.unix_fds)
        for fd in fds:  # at once: a child started now would keep the lock alive
            os.set_inheritable(fd, False)
        index = reply.body[0]
        if not 0 <= index < len(fds):
            for fd in fds:
                os.close(fd)
            raise Unavailable("Inhibit: logind sent no file descriptor")
        for fd in fds[:index] + fds[index + 1 :]:
            os.close(fd)
        return fds[index]

    def _on_message(self, message: Message) -> None:
        if (
            message.message_type == MessageType.SIGNAL
            and message.interface == MANAGER
            and message.path == PATH
            and message.member in PREPARE
            and message.body
        ):
            self.on_prepare(PREPARE[message.member], bool(message.body[0]))


class Inhibitor(Observer):
    """The locks, taken and released as the run goes; `settings` is config.inhibit."""

    def __init__(self, settings) -> None:
        self.what = settings.what
        self.required = settings.required
        self.delay_what = ":".join(w for w in self.what.split(":") if w in DELAYABLE)
        self._logind: Optional[Logind] = None
        self._problem: Optional[str] = None  # why there is no logind to talk to
        self._warned = False
        self._guard = threading.Lock()
        self._block: Optional[int] = None
        self._delay: Optional[int] = None
        self._run = None
        self._going: Optional[str] = None  # "shutdown" or "sleep", once announced

    def _connected(self) -> Optional[Logind]:
        if self._logind is None and self._problem is None:
            try:
                self._logind = Logind(self._prepare)
            except Unavailable as error:
                self._problem = str(error)
        return self._logind

    def _lock(self, what: str, why: str, mode: str) -> Optional[int]:
        """A lock, or None after saying why not (a warning, the first time)."""
        logind = self._connected()
        try:
            if logind is None:
                raise Unavailable(self._problem)
            return logind.inhibit(what, why, mode)
        except Unavailable as error:
            if self.required and mode == "block":
                raise Veto(f"no logind inhibitor lock ([inhibit] required): {error}") from None
            if not self._warned:
                held_off = self.what.replace(":", " or ")
                level = logging.WARNING if under_systemd() else logging.INFO
                log.log(
                    level,
                    "no logind inhibitor lock (%s): nothing holds off %s while containers are down",
                    error,
                    held_off,
                )
                self._warned = True
            return None

    def tide_started(self, run, plan) -> None:
        self._run = run
        if self._going:
            run.abort(self._going)  # the host is going down: touch nothing more
        elif self.delay_what and plan.groups:
            why = f"tide {run.tide.name}: containers are put back before a shutdown or sleep"
            fd = self._lock(self.delay_what, why, "delay")
            with self._guard:
                self._delay = fd

    def containers_leaving(self, run, group) -> None:
        if self._going:
            raise Veto(f"the host is about to {VERB[self._going]}")
        why = f"tide {run.tide.name}: backing up {group.name}, its containers are down"
        fd = self._lock(self.what, why, "block")
        with self._guard:
            self._block = fd

    def containers_back(self, run, group) -> None:
        with self._guard:
            self._block = _release(self._block)
            if self._going:  # restored: the shutdown may go on
                self._delay = _release(self._delay)

    def tide_done(self, run, result) -> None:
        with self._guard:
            self._block = _release(self._block)
            self._delay = _release(self._delay)
            self._run = None

    def _prepare(self, what: str, starting: bool) -> None:
        """logind's PrepareFor* signal, in the D-Bus thread."""
        if not starting:
            if what == "sleep":
                self._going = None  # woken up
            return
        self._going = what
        with self._guard:
            run, down = self._run, self._block is not None
            if not down:
                self._delay = _release(self._delay)
        if run is not None:
            log.warning("the host is about to %s: interrupting the backup", VERB[what])
            run.abort(what)


def _release(fd: Optional[int]) -> Optional[int]:
    """Close a lock's fd; the fd's new value (None)."""
    if fd is not None:
        os.close(fd)
    return None
