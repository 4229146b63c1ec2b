"""A NOTIFY_SOCKET as systemd makes one: an AF_UNIX datagram socket (abstract name, so no
path length limit), read in a thread; each datagram kept raw, with when it arrived."""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from typing import List, Tuple


class NotifySocket:
    def __init__(self) -> None:
        self.name = f"salvage-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + self.name)
        self.sock.settimeout(0.1)
        self.datagrams: List[Tuple[float, bytes]] = []  # (time.time(), raw bytes)
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        """The value for NOTIFY_SOCKET."""
        return "@" + self.name

    def _read(self) -> None:
        while not self._closed.is_set():
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            self.datagrams.append((time.time(), data))

    def messages(self) -> List[Tuple[float, dict]]:
        """Each datagram as (arrival, {FIELD: value}); the bytes must be UTF-8."""
        parsed = []
        for when, data in list(self.datagrams):
            text = data.decode("utf-8")  # raises on anything but valid UTF-8
            parsed.append((when, dict(line.split("=", 1) for line in text.split("\n") if line)))
        return parsed

    def values(self, field: str) -> List[str]:
        return [fields[field] for _, fields in self.messages() if field in fields]

    def times(self, field: str) -> List[float]:
        return [when for when, fields in self.messages() if field in fields]

    def wait_for(self, field: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.values(field):
            if time.monotonic() > deadline:
                raise AssertionError(f"no {field}= within {timeout} s: {self.datagrams}")
            time.sleep(0.05)

    def close(self) -> None:
        self._closed.set()
        self._thread.join(timeout=2)
        self.sock.close()
