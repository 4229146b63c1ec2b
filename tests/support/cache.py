"""What the test processes of one machine share: a cache directory (debootstrapped roots,
kept between runs), and locks, so that parallel workers (pytest-xdist) and parallel steps
build each thing once and never see it half made."""

from __future__ import annotations

import fcntl
import hashlib
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

CACHE = Path(os.environ.get("SALVAGE_TEST_CACHE", "/var/cache/salvage-tests"))


@contextmanager
def locked(name: str) -> Iterator[None]:
    """Held by one process of the machine at a time; `name` is any string."""
    CACHE.mkdir(parents=True, exist_ok=True)
    key = hashlib.sha256(name.encode()).hexdigest()[:16]
    with open(CACHE / f".{key}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
