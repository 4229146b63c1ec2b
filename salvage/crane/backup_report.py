"""What a crane says it stored: `/salvage/meta/result.json`, written by a backup and read
back by salvage once the crane has exited (docs/crane-interface.md).

The file comes from the crane image, which salvage does not control: it is untrusted
input. It is size-limited, must be a JSON object, and each known key must have the right
type and range; anything else makes salvage ignore the whole file and say why in one line.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Dict, Optional

from salvage.errors import SalvageError

PATH = "/salvage/meta/result.json"
LIMIT = 64 * 1024  # bytes: a few numbers and an id; more is not a report
NUMBERS = ("bytes_stored", "bytes_read", "files")
MAX_NUMBER = 2**63 - 1  # what SQLite stores
_SNAPSHOT = re.compile(r"[\x21-\x7e]{1,200}")  # printable ASCII, no spaces


class BadReport(SalvageError, ValueError):
    """The crane's result.json cannot be trusted; the message says why, in a few words."""


@dataclass(frozen=True)
class Report:
    snapshot: Optional[str] = None  # the id `list` and `restore` know it by
    bytes_stored: Optional[int] = None  # what this backup added to the backup store
    bytes_read: Optional[int] = None  # the volume's bytes the crane read
    files: Optional[int] = None  # the files it saved


def parse(raw: bytes) -> Report:
    """The report in `raw` (the file's bytes); BadReport when it is not one."""
    if len(raw) > LIMIT:
        raise BadReport(f"larger than {LIMIT} bytes")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise BadReport(f"not JSON ({error})") from None
    if not isinstance(data, dict):
        raise BadReport("not a JSON object")
    values: Dict[str, Any] = {}
    for key in NUMBERS:
        value = data.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            raise BadReport(f"{key}: {_show(value)} is not a whole number")
        if not 0 <= value <= MAX_NUMBER:
            raise BadReport(f"{key}: {_show(value)} is out of range")
        values[key] = value
    snapshot = data.get("snapshot")
    if snapshot is not None:
        if not isinstance(snapshot, str) or not _SNAPSHOT.fullmatch(snapshot):
            raise BadReport(
                f"snapshot: {_show(snapshot)} is not an id (1-200 printable characters, no spaces)"
            )
        values["snapshot"] = snapshot
    return Report(**values)


def _show(value) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."
