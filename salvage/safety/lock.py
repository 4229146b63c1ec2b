"""One salvage at a time: a lock file in the state directory, held for a whole run.

A second run waits for the first (up to a timeout) instead of interleaving with it, and
`salvage recover` waits too: it must never restart containers that a live run stopped.
The kernel drops the lock when its holder dies, even by SIGKILL.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from typing import Callable, Iterator, Optional

from salvage.errors import SalvageError

FILE = "lock"
UNKNOWN = "another process"
# A holder writes its pid just after it takes the lock: a waiter that finds none yet waits
# this long for it before naming the holder UNKNOWN.
PID_GRACE = 1.0


class LockTimeout(SalvageError):
    pass


def _holder(fd: int) -> str:
    os.lseek(fd, 0, os.SEEK_SET)
    pid = os.read(fd, 32).decode(errors="replace").strip()
    return f"pid {pid}" if pid else UNKNOWN


@contextlib.contextmanager
def hold(
    state_directory: str, timeout: float, on_wait: Optional[Callable[[str], None]] = None
) -> Iterator[None]:
    """Hold the lock; wait up to `timeout` seconds for it, calling `on_wait(holder)` once."""
    # Others may pass through (history.sqlite is the group salvage's), not list it.
    os.makedirs(state_directory, mode=0o711, exist_ok=True)
    path = os.path.join(state_directory, FILE)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        started = time.monotonic()
        deadline = started + timeout
        waited = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = _holder(fd)
                if time.monotonic() >= deadline:
                    raise LockTimeout(
                        f"another salvage ({holder}) still holds {path} after {timeout:.0f} s"
                    ) from None
                known = holder != UNKNOWN or time.monotonic() - started >= PID_GRACE
                if not waited and known and on_wait:
                    on_wait(holder)
                    waited = True
                time.sleep(0.2)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)


def is_held(state_directory: str) -> bool:
    """Whether a live salvage holds the lock now (a dead one's lock is gone)."""
    path = os.path.join(state_directory, FILE)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
