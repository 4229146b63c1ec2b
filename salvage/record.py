"""The record: every container state salvage changes, on disk before the change is made.

If salvage dies (SIGKILL, power loss, OOM) with containers down, the record says which
containers to bring back and how; `salvage recover` reads it. Each entry is written and
fsynced before the change, and removed once the container is back.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import asdict, dataclass
from typing import List, Optional

FILE = "record.json"


@dataclass(frozen=True)
class Entry:
    container: str  # id
    name: str
    change: str  # "stop" or "pause": salvage changed its state; "post": a post-command is due
    prior: str  # the state before the change ("running")
    since: float  # epoch seconds, taken before the change
    run_id: str
    tide: str
    command: Optional[str] = None  # for "post"
    user: Optional[str] = None
    exit_policy: str = "stop"

    @property
    def key(self) -> tuple:
        return (self.container, self.change)


class Record:
    """The record file in the state directory; safe to use from several threads."""

    def __init__(self, state_directory: str) -> None:
        self.directory = state_directory
        self.path = os.path.join(state_directory, FILE)
        self._lock = threading.Lock()

    def entries(self) -> List[Entry]:
        try:
            with open(self.path, encoding="utf-8") as stream:
                data = json.load(stream)
        except FileNotFoundError:
            return []
        return [Entry(**item) for item in data.get("entries", [])]

    def add(self, entry: Entry) -> None:
        with self._lock:
            entries = [e for e in self.entries() if e.key != entry.key]
            self._write(entries + [entry])

    def remove(self, entry: Entry) -> None:
        with self._lock:
            entries = self.entries()
            kept = [e for e in entries if e.key != entry.key]
            if len(kept) != len(entries):
                self._write(kept)

    def _write(self, entries: List[Entry]) -> None:
        os.makedirs(self.directory, mode=0o711, exist_ok=True)
        temporary = f"{self.path}.{os.getpid()}.tmp"
        body = json.dumps(
            {"written": time.time(), "entries": [asdict(e) for e in entries]}, indent=1
        )
        with open(temporary, "w", encoding="utf-8") as stream:
            stream.write(body)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, self.path)
        # The rename itself must reach the disk too.
        directory = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
