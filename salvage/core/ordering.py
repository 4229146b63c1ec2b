"""Which containers wait for which when they go down and come back, and doing that work
in parallel where nothing relates them.

Compose's depends_on (a v2 label, or the files of a docker-compose 1.x project) relates
containers of one project: a container is stopped only once every container that depends
on it is, and started only once every container it depends on is back. Unrelated
containers go at once. When a project's dependencies cannot be known, its group goes one
container at a time, in the order planning gives.
"""

from __future__ import annotations

import threading
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import (
    Any,
    Callable,
    Collection,
    Dict,
    List,
    Mapping,
    Optional,
    Sequence,
    Set,
    Tuple,
    TypeVar,
)

from salvage.core.model import COMPOSE_DEPENDS_ON, ComposeFiles, Container

T = TypeVar("T")
# Containers changed at once: a few engine calls each; docker-py keeps 10 connections.
WORKERS = 8


@dataclass(frozen=True)
class Order:
    after: Mapping[str, Tuple[str, ...]] = field(default_factory=dict)  # id -> ids it needs
    unknown: str = ""  # why the dependencies are not known: then one at a time

    @property
    def workers(self) -> int:
        return 1 if self.unknown else WORKERS

    def dependents(self) -> Dict[str, Set[str]]:
        """id -> the ids that depend on it (they stop first)."""
        found: Dict[str, Set[str]] = {}
        for dependent, needs in self.after.items():
            for need in needs:
                found.setdefault(need, set()).add(dependent)
        return found


def dependencies(
    containers: Sequence[Container], files: Optional[Mapping[str, ComposeFiles]] = None
) -> Order:
    """The depends_on relations among `containers`: from Compose v2's label, else from the
    project's compose files (`files`, read for projects without labels); a project whose
    files said nothing makes the order unknown."""
    files = files or {}
    providers: Dict[Tuple[str, str], List[str]] = {}
    for c in containers:
        if c.project and c.service:
            providers.setdefault((c.project, c.service), []).append(c.id)
    after: Dict[str, Tuple[str, ...]] = {}
    unknown: List[str] = []
    for c in sorted(containers, key=lambda c: c.name):
        if not (c.project and c.service):
            continue
        found = files.get(c.project)
        if COMPOSE_DEPENDS_ON in c.labels or found is None:  # Compose v2 (or none recorded)
            services = c.depends_on
        elif not found.problem:
            services = tuple(found.depends_on.get(c.service, ()))
        else:
            line = f'compose project "{c.project}": {found.problem}'
            if line not in unknown:
                unknown.append(line)
            continue
        needs = [i for s in services for i in providers.get((c.project, s), []) if i != c.id]
        if needs:
            after[c.id] = tuple(dict.fromkeys(needs))
    return Order(after, "; ".join(unknown))


def in_order(
    items: Sequence[T],
    key: Callable[[T], str],
    waits: Mapping[str, Collection[str]],
    work: Callable[[T], None],
    workers: int,
    keep_going: bool = False,
) -> List[BaseException]:
    """Call `work(item)` for each item once the items it waits for (by key) are done, up to
    `workers` at a time; the first ready item in `items` goes first. An item that waits
    for no item of `items` is ready at once; a cycle is broken in the order of `items`.

    The first failure starts no new item unless `keep_going` (the items under way finish).
    Returns the failures, first first. One worker: all in the calling thread."""
    keys = {key(item) for item in items}
    pending = list(items)
    done: Set[str] = set()
    errors: List[BaseException] = []
    lock = threading.Lock()

    def ready(running: Set[str]) -> List[T]:
        found = [i for i in pending if not (set(waits.get(key(i), ())) & keys) - done]
        if not found and not running and pending:
            found = pending[:1]  # a cycle: nothing else can ever be ready
        return found

    def call(item: T) -> None:
        try:
            work(item)
        except BaseException as error:  # handed to the caller
            with lock:
                errors.append(error)

    if workers <= 1 or len(items) <= 1:
        while pending and (keep_going or not errors):
            item = ready(set())[0]
            pending.remove(item)
            call(item)
            done.add(key(item))
        return errors

    size = min(workers, len(items))
    with ThreadPoolExecutor(max_workers=size, thread_name_prefix="order") as pool:
        running: Dict[Future[Any], T] = {}
        while pending or running:
            if keep_going or not errors:
                for item in ready({key(i) for i in running.values()}):
                    if len(running) >= workers:
                        break
                    pending.remove(item)
                    running[pool.submit(call, item)] = item
            elif not running:
                break
            finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for future in finished:
                done.add(key(running.pop(future)))
    return errors
