"""Byte streams between containers through the engine's API, never through a file: a
`docker exec` in a running container, and a crane's standard input or output.

Docker multiplexes a non-tty stream as frames: an 8-byte header (stream 1 = stdout,
2 = stderr; 4-byte big-endian length) then the payload.
"""

from __future__ import annotations

import socket
import struct
import time
from typing import Callable, Iterator, Optional, Tuple

STDOUT, STDERR = 1, 2
CHUNK = 1 << 16
TAIL = 4096  # how much of a process's standard error is kept, for its one-line failure


def raw(sock):
    """The socket under what docker-py's *_socket calls return (a SocketIO over a unix
    socket, a socket for TCP)."""
    return getattr(sock, "_sock", sock)


def _read_exactly(sock, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            return data
        data += chunk
    return data


def frames(sock) -> Iterator[Tuple[int, bytes]]:
    """(stream, payload) until the engine closes the stream."""
    sock = raw(sock)
    while True:
        header = _read_exactly(sock, 8)
        if len(header) < 8:
            return
        stream, size = header[0], struct.unpack(">L", header[4:8])[0]
        left = size
        while left:
            chunk = sock.recv(min(left, CHUNK))
            if not chunk:
                return
            left -= len(chunk)
            yield stream, chunk


def close_input(sock) -> None:
    """End of input for the process behind `sock`; its output can still be read."""
    try:
        raw(sock).shutdown(socket.SHUT_WR)
    except OSError:
        pass


class Stderr:
    """The tail of a process's standard error, and its last line."""

    def __init__(self) -> None:
        self.data = b""

    def add(self, chunk: bytes) -> None:
        self.data = (self.data + chunk)[-TAIL:]

    def last_line(self) -> str:
        """The last line that says error (psql follows it with DETAIL, HINT), else the last."""
        lines = [line.strip() for line in self.data.decode("utf-8", "replace").splitlines()]
        lines = [line for line in lines if line]
        said = [line for line in lines if "error" in line.lower()]
        return (said or lines or [""])[-1]


def exec_start(api, container: str, script: str, stdin: bool, user: Optional[str] = None):
    """Start `sh -c script` in a running container: (exec id, its attached socket). The
    script, not a secret, is all the command line holds."""
    created = api.exec_create(
        container, ["sh", "-c", script], stdout=True, stderr=True, stdin=stdin, user=user or ""
    )
    return created["Id"], api.exec_start(created["Id"], socket=True)


def exec_exit_code(api, exec_id: str, wait: float = 10.0) -> Optional[int]:
    """The exec's exit code once its streams have ended (the engine sets it just after)."""
    deadline = time.monotonic() + wait
    while True:
        found = api.exec_inspect(exec_id)
        if not found.get("Running") and found.get("ExitCode") is not None:
            return int(found["ExitCode"])
        if time.monotonic() > deadline:
            return None
        time.sleep(0.05)


def pump(source, on_stdout: Callable[[bytes], None], errors: Stderr) -> None:
    """Each stdout frame of `source` to `on_stdout`, its stderr into `errors`."""
    for stream, chunk in frames(source):
        if stream == STDERR:
            errors.add(chunk)
        elif stream == STDOUT:
            on_stdout(chunk)
