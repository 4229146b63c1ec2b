"""A unix-socket proxy in front of the engine that writes down every HTTP request made
through it, so that a process's Docker API calls can be counted from outside it."""

from __future__ import annotations

import socket
import threading
from pathlib import Path
from typing import List


class _Requests:
    """Splits one connection's client-to-engine bytes into requests (HTTP/1.1 keep-alive:
    headers, then a Content-Length or chunked body). After an upgrade (attach, exec) the
    rest of the connection is raw stream and no longer parsed."""

    def __init__(self, seen: List[str]) -> None:
        self.seen, self.buffer, self.body, self.raw = seen, b"", 0, False
        self.chunked = False

    def feed(self, data: bytes) -> None:
        if self.raw:
            return
        self.buffer += data
        while True:
            if self.body:
                taken = min(self.body, len(self.buffer))
                self.buffer, self.body = self.buffer[taken:], self.body - taken
                if self.body:
                    return
            if self.chunked and not self._chunk():
                return
            if self.chunked or self.body:
                continue
            head, sep, rest = self.buffer.partition(b"\r\n\r\n")
            if not sep:
                return
            self.buffer = rest
            lines = head.decode("latin-1").split("\r\n")
            self.seen.append(lines[0].rsplit(" ", 1)[0])  # "GET /v1.41/containers/json?all=1"
            headers = {
                k.strip().lower(): v.strip().lower()
                for k, _, v in (line.partition(":") for line in lines[1:])
            }
            if "upgrade" in headers.get("connection", ""):
                self.raw = True
                return
            self.body = int(headers.get("content-length", "0") or 0)
            self.chunked = "chunked" in headers.get("transfer-encoding", "")

    def _chunk(self) -> bool:
        """Consume one chunk's size line (its data goes through `body`); False: need more."""
        line, sep, rest = self.buffer.partition(b"\r\n")
        if not sep:
            return False
        size = int(line.split(b";")[0] or b"0", 16)
        self.buffer = rest
        if size == 0:  # the last chunk, then an empty trailer line
            self.chunked, self.body = False, 2
        else:
            self.body = size + 2  # the data and its CRLF
        return True


class CountingProxy:
    def __init__(self, upstream: str, path: Path) -> None:
        self.upstream = upstream.removeprefix("unix://")
        self.path = path
        self.requests: List[str] = []
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(path))
        self.server.listen(64)
        self.host = f"unix://{path}"
        threading.Thread(target=self._accept, name="proxy", daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return  # closed
            engine = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            engine.connect(self.upstream)
            parser = _Requests(self.requests)
            for src, dst, feed in ((client, engine, parser.feed), (engine, client, None)):
                threading.Thread(target=self._pump, args=(src, dst, feed), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket, feed) -> None:
        try:
            while data := src.recv(65536):
                if feed:
                    feed(data)
                dst.sendall(data)
        except OSError:
            pass
        for sock in (src, dst):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        src.close()

    def take(self) -> List[str]:
        """The requests seen since the last take."""
        taken, self.requests[:] = list(self.requests), []
        return taken

    def close(self) -> None:
        self.server.close()
        self.path.unlink(missing_ok=True)
