"""Logging to stderr: plain lines for people, warnings and errors marked as such.

When stderr is the journal (systemd's JOURNAL_STREAM names it), each line starts with its
syslog priority, `<3>` for an error to `<7>` for debug, which journald takes as the
entry's priority: `journalctl -p err` then shows the failures.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Optional, TextIO

# syslog priorities: err, warning, info, debug
PRIORITIES = ((logging.ERROR, 3), (logging.WARNING, 4), (logging.INFO, 6))
DEBUG_PRIORITY = 7


class _Formatter(logging.Formatter):
    def __init__(self, journal: bool = False) -> None:
        super().__init__()
        self.journal = journal

    def format(self, record: logging.LogRecord) -> str:
        text = record.getMessage()
        if record.levelno >= logging.ERROR:
            text = f"error: {text}"
        elif record.levelno >= logging.WARNING:
            text = f"warning: {text}"
        if not self.journal:
            return text
        # journald reads the prefix on every line: a multi-line message keeps its priority.
        prefix = f"<{priority(record.levelno)}>"
        return "\n".join(prefix + line for line in text.split("\n"))


def priority(level: int) -> int:
    return next((p for threshold, p in PRIORITIES if level >= threshold), DEBUG_PRIORITY)


def to_journal(stream: TextIO, journal_stream: Optional[str]) -> bool:
    """Whether `stream` is the journal stream that JOURNAL_STREAM ("device:inode") names;
    a child that inherited the variable but writes elsewhere gets plain lines."""
    try:
        device, inode = (int(part) for part in (journal_stream or "").split(":"))
        info = os.fstat(stream.fileno())
    except (ValueError, OSError, AttributeError):
        return False
    return (info.st_dev, info.st_ino) == (device, inode)


def setup(verbose: bool = False, level: Optional[int] = None) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter(to_journal(sys.stderr, os.environ.get("JOURNAL_STREAM"))))
    logger = logging.getLogger("salvage")
    logger.handlers[:] = [handler]
    logger.setLevel(level or (logging.DEBUG if verbose else logging.INFO))
    logger.propagate = False
