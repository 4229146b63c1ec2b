"""Downtime: the containers one salvage action takes down, and the way back. One mechanism
for a run's group and for a restore, so that the two cannot drift apart.

- Each change (stop, pause) and each due post-command is recorded before it happens; the
  entry joins this downtime as soon as it is on disk, so `end` brings back every recorded
  container, also one whose change was never seen to finish (an engine that froze mid-stop
  may still stop it once it thaws).
- The downtime clock runs from the first change to the end of `end`.
- Containers go down and come back in parallel where Compose's depends_on relates none of
  them (salvage.core.ordering), one at a time when the relations are unknown. The record is
  written from those threads (it has its own lock).
- SIGTERM, SIGINT and SIGHUP (`signals_unwind`) interrupt every open downtime: its cranes
  are killed, no further container is touched, and `end` still brings every one back.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import signal
import threading
import time
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from salvage.core import labels, ordering
from salvage.core.labels import Settings
from salvage.core.model import Container, Problem
from salvage.core.ordering import Order
from salvage.engine.client import Engine, describe
from salvage.engine.errors import DockerException
from salvage.errors import SalvageError
from salvage.safety import states
from salvage.safety.record import Entry, Record, RecordError

log = logging.getLogger("salvage")
SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
_received: List[str] = []  # signals received by this process, first first
_open: List[Downtime] = []


class Interrupted(SalvageError):
    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem


def stop_cranes(engine: Engine, run_id: str) -> None:
    """Kill the cranes of one run (their volumes fail; the containers are brought back)."""
    api = engine.unbounded()
    try:
        for crane in api.containers(filters={"label": f"{labels.RUN}={run_id}"}):
            with contextlib.suppress(DockerException):  # already gone
                api.kill(crane["Id"])
    except DockerException as error:
        log.error("cannot stop the cranes of run %s: %s", run_id[:8], describe(error))
    finally:
        api.close()


@contextlib.contextmanager
def signals_unwind(on_signal: Optional[Callable[[str], None]] = None) -> Iterator[List[str]]:
    """SIGTERM, SIGINT and SIGHUP interrupt the open downtimes (and call `on_signal`)
    instead of killing salvage; the list holds the signals received.

    The handler itself only hands the signal on to a thread of this context's: a handler
    runs in the main thread between any two of its bytecodes, maybe while it holds a lock
    that the work needs (starting a thread, writing a log line), and would wait on it for
    ever. SimpleQueue.put is safe there."""
    inbox: queue.SimpleQueue[Optional[str]] = queue.SimpleQueue()

    def deliver() -> None:
        while True:
            name = inbox.get()
            if name is None:
                return
            if on_signal:
                on_signal(name)
            for downtime in list(_open):
                downtime.interrupt(name)

    def handler(signum, _frame) -> None:
        name = signal.Signals(signum).name
        _received.append(name)
        inbox.put(name)

    worker = threading.Thread(target=deliver, name="signals", daemon=True)
    worker.start()
    previous = {sig: signal.signal(sig, handler) for sig in SIGNALS}
    try:
        yield _received
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
        inbox.put(None)  # after what came before it has been handed on
        worker.join(timeout=10)


class Downtime:
    def __init__(
        self,
        engine: Engine,
        record: Record,
        run_id: str,
        tide: str,
        cancelled: Optional[threading.Event] = None,
        why: Optional[Callable[[], Optional[str]]] = None,
        cranes: Optional[str] = None,
    ) -> None:
        """`cancelled`, `why`: the owner's own cancellation (a run's abort) and its reason.
        `cranes`: the run id its cranes carry, when not `run_id` (a restore that finishes an
        interrupted one records under that one's run id)."""
        self.engine, self.record, self.run_id, self.tide = engine, record, run_id, tide
        self.cranes = cranes or run_id
        self.cancelled = cancelled or threading.Event()
        self._why = why
        self.reason = _received[0] if _received else ""
        if _received:
            self.cancelled.set()
        self.entries: List[Entry] = []  # every recorded change, oldest first
        self.posts: Dict[str, Entry] = {}  # container id -> its due post-command
        self.since: Optional[float] = None  # monotonic, at the first change
        self.seconds = 0.0
        # How `end` brings them back: as `enter_all` took them down (else newest first).
        self.order = Order(unknown="taken down one by one")
        self._lock = threading.Lock()
        _open.append(self)

    def interrupt(self, reason: str) -> None:
        """From a signal handler or another thread: touch nothing more, kill the cranes."""
        if self.cancelled.is_set():
            return
        self.reason = reason
        self.cancelled.set()
        log.warning("interrupted (%s): stopping the cranes", reason)
        threading.Thread(
            target=stop_cranes, args=(self.engine, self.cranes), name="interrupt", daemon=True
        ).start()

    def check(self, where: str) -> None:
        # A signal counts from the moment it is received, before its thread hands it on.
        if self.cancelled.is_set() or _received:
            why = self.reason or (self._why and self._why()) or _reason()
            raise Interrupted(Problem(where, f"interrupted ({why})"))

    def enter(self, container: Container, action: str, stop_timeout: int) -> Entry:
        """Stop or pause a container; it is brought back by `end` whatever happens."""
        self.check(f'container "{container.name}"')
        with self._lock:
            if self.since is None:
                self.since = time.monotonic()
        return states.enter(
            self.engine,
            self.record,
            container,
            action,
            stop_timeout,
            self.run_id,
            self.tide,
            recorded=self.entries,
        )

    def enter_all(
        self,
        changes: Sequence[Tuple[Container, str, int]],
        order: Order,
        before: Optional[Callable[[Container], None]] = None,
    ) -> None:
        """`enter` each (container, action, stop timeout): a container once every one that
        depends on it is down, unrelated ones at once (`before` runs just before each).
        After a failure or an interrupt no further container is touched; the changes under
        way finish, and the first failure is raised. `end` brings them back in `order`."""
        self.order = order
        dependents = order.dependents()

        def one(change: Tuple[Container, str, int]) -> None:
            self.check(f'container "{change[0].name}"')
            if before:
                before(change[0])
            self.enter(*change)

        errors = ordering.in_order(
            changes, lambda change: change[0].id, dependents, one, order.workers
        )
        if errors:
            # An interrupt is said by the check of the next container; a real failure wins.
            raise next((e for e in errors if not isinstance(e, Interrupted)), errors[0])

    def post_due(self, container: Container, settings: Settings) -> None:
        """A post-command is due from the moment its container is touched."""
        if settings.post and container.id not in self.posts:
            entry = states.post_entry(container, settings, self.run_id, self.tide)
            self.record.add(entry)
            self.posts[container.id] = entry

    def disturbed(self) -> Optional[str]:
        """Someone started or removed a container this downtime changed."""
        for entry in self.entries:
            why = states.disturbed(self.engine, entry)
            if why:
                return f'container "{entry.name}" {why}'
        return None

    def end(self) -> List[Problem]:
        """Bring back every recorded container (once), each after the ones it depends on,
        unrelated ones at once; newest first when the order is unknown. Stop the clock."""
        if self in _open:  # a signal from now on interrupts nothing of this
            _open.remove(self)
        problems = states.restore_all(self.engine, self.record, self.entries, self.order)
        self.close()
        return problems

    def close(self) -> None:
        """End without bringing anything back: what is recorded stays down and recorded
        (a half-restored volume's users), for the same restore run again to finish."""
        if self in _open:
            _open.remove(self)
        if self.since is not None and not self.seconds:
            self.seconds = time.monotonic() - self.since

    def posts_done(self) -> None:
        """The due post-commands have run (or are not due any more)."""
        for entry in self.posts.values():
            with contextlib.suppress(RecordError):  # then `recover` finds them not due
                self.record.remove(entry)


def _reason() -> str:
    return _received[0] if _received else "cancelled"
