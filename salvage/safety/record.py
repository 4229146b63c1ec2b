"""The record: every container state salvage changes, on disk before the change is made.

If salvage dies (SIGKILL, power loss, OOM) with containers down, the record says which
containers to bring back and how; `salvage recover` reads it.

It is a file of JSON lines that is only ever appended to: each line is written and fsynced
before the change it announces is made. So a torn last line (salvage died while writing
it) announced a change that was never made, and is ignored. Damage anywhere else is not
guessed around: RecordDamaged names the file and what to do. Once no entry is left, the
file is emptied (a truncation, which needs no free space).
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import threading
from dataclasses import asdict, dataclass
from typing import Dict, List, Optional, Tuple

from salvage.errors import EXIT_CONFIG, SalvageError

FILE = "record.jsonl"
LEGACY = "record.json"  # one JSON document, as salvage wrote it before the JSON lines


class RecordError(SalvageError):
    """The record cannot be read or written; the message is one line for a person."""


class RecordDamaged(RecordError):
    exit_code = EXIT_CONFIG  # a person must look before salvage acts


class RecordUnwritable(RecordError):
    pass


class RecordUnreadable(RecordError):
    """Not this user's to read (the state directory is root's): not damage."""


@dataclass(frozen=True)
class Entry:
    container: str  # id
    name: str
    change: str  # "stop" or "pause": salvage changed its state; "post": a post-command is due
    prior: str  # the state before the change ("running", "restarting")
    since: float  # epoch seconds (salvage's clock), taken before the change: for people only
    run_id: str
    tide: str
    command: Optional[str] = None  # for "post"
    user: Optional[str] = None
    exit_policy: str = "stop"
    # The engine's own clock (decisions never compare it with salvage's): the container's
    # last State.StartedAt before salvage's change (a later one is someone else's start),
    # and its State.FinishedAt once salvage stopped it.
    started_at: str = ""
    stopped_at: str = ""

    @property
    def key(self) -> tuple:
        return (self.container, self.change)


class Record:
    """The record file in the state directory; safe to use from several threads."""

    def __init__(self, state_directory: str) -> None:
        self.directory = state_directory
        self.path = os.path.join(state_directory, FILE)
        self.legacy = os.path.join(state_directory, LEGACY)
        self._lock = threading.Lock()
        self._unwritten: set = set()  # keys removed whose removal could not be written

    def entries(self) -> List[Entry]:
        """The changes not yet undone, oldest first. RecordDamaged when it cannot be read."""
        with self._lock:
            return list(self._read()[0].values())

    def add(self, entry: Entry) -> None:
        """On disk when this returns (an entry of the same key is replaced in place)."""
        with self._lock:
            live, end = self._prepare()
            self._append({"add": asdict(entry)}, end)
            self._unwritten.discard(entry.key)

    def remove(self, entry: Entry) -> None:
        """RecordUnwritable when the removal cannot be written; it is then made good by the
        truncation that removes the last entry (which needs no free space)."""
        with self._lock:
            live, end = self._prepare()
            if entry.key not in live:
                return
            self._unwritten.add(entry.key)
            if not set(live) - self._unwritten:  # nothing left: empty the file
                self._guard(self._truncate, 0)
                self._unwritten.clear()
            else:
                self._append({"remove": list(entry.key)}, end)
                self._unwritten.discard(entry.key)

    # --- reading ----------------------------------------------------------------------------

    def _read(self) -> Tuple[Dict[tuple, Entry], int]:
        """The live entries by key, and where the intact lines end (a torn tail starts)."""
        live = {e.key: e for e in self._read_legacy()}
        try:
            with open(self.path, "rb") as stream:
                data = stream.read()
        except FileNotFoundError:
            return live, 0
        except PermissionError:
            raise RecordUnreadable(f"{self.path}: permission denied (sudo)") from None
        except OSError as error:
            raise RecordDamaged(f"cannot read {self.path}: {error.strerror}") from None
        end = data.rfind(b"\n") + 1  # after it: a line whose write never finished
        for number, line in enumerate(data[:end].split(b"\n")[:-1], 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
                if "add" in item:
                    entry = Entry(**item["add"])
                    live[entry.key] = entry
                else:
                    live.pop(tuple(item["remove"]), None)
            except (ValueError, TypeError, KeyError, AttributeError):
                raise RecordDamaged(self._damaged(self.path, f"line {number}")) from None
        return live, end

    def _read_legacy(self) -> List[Entry]:
        try:
            with open(self.legacy, encoding="utf-8") as stream:
                text = stream.read()
        except FileNotFoundError:
            return []
        except PermissionError:
            raise RecordUnreadable(f"{self.legacy}: permission denied (sudo)") from None
        except (OSError, ValueError) as error:
            raise RecordDamaged(self._damaged(self.legacy, str(error))) from None
        if not text.strip():
            return []
        try:
            return [Entry(**item) for item in json.loads(text)["entries"]]
        except (ValueError, TypeError, KeyError, AttributeError):
            raise RecordDamaged(self._damaged(self.legacy, "not salvage's JSON")) from None

    @staticmethod
    def _damaged(path: str, where: str) -> str:
        return (
            f"{path} is damaged ({where}): it lists the containers salvage stopped or paused;"
            " start any that are down by hand (docker ps -a), then remove the file"
        )

    # --- writing ----------------------------------------------------------------------------

    def _prepare(self) -> Tuple[Dict[tuple, Entry], int]:
        """Read before a change; entries of the legacy file move into the JSON lines."""
        live, end = self._read()
        for stale in glob.glob(f"{glob.escape(self.legacy)}.*.tmp"):  # older versions' writes
            with contextlib.suppress(OSError):
                os.remove(stale)
        if os.path.exists(self.legacy):
            legacy = self._read_legacy()
            at: Optional[int] = end  # truncate a torn tail on the first append only
            for entry in legacy:
                self._append({"add": asdict(entry)}, at)
                at = None
            self._guard(os.remove, self.legacy)
            live, end = self._read()
        return live, end

    def _append(self, item: dict, end) -> None:
        """One line, fsynced. A torn tail is cut first (`end`: where it starts) so that no
        line is ever glued to one; a write that fails part way is cut back out."""
        line = (json.dumps(item, separators=(",", ":")) + "\n").encode()
        self._guard(os.makedirs, self.directory, 0o711, True)
        fd = self._guard(os.open, self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            size = os.fstat(fd).st_size
            start = size if end is None else min(end, size)
            try:
                if start < size:
                    os.ftruncate(fd, start)
                written = os.pwrite(fd, line, start)
                if written != len(line):
                    raise OSError(28, os.strerror(28))  # ENOSPC: a short write
                os.fsync(fd)
            except OSError as error:
                try:
                    os.ftruncate(fd, start)
                except OSError:
                    pass  # then it is a torn tail, which reading ignores
                raise RecordUnwritable(f"cannot write {self.path}: {error.strerror}") from None
            if size == 0:  # a new file: its directory entry must reach the disk too
                self._guard(_fsync_directory, self.directory)
        finally:
            os.close(fd)

    def _truncate(self, size: int) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.ftruncate(fd, size)
            os.fsync(fd)
        finally:
            os.close(fd)

    def _guard(self, call, *args):
        try:
            return call(*args)
        except RecordError:
            raise
        except OSError as error:
            raise RecordUnwritable(f"cannot write {self.path}: {error.strerror}") from None


def _fsync_directory(path: str) -> None:
    directory = os.open(path, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
