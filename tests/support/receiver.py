"""A real HTTP server on 127.0.0.1 that records every request it gets: where the tests'
notifications go."""

from __future__ import annotations

import json
import socket
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Dict, List


@dataclass
class Received:
    method: str
    path: str
    headers: Dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode()

    @property
    def json(self):
        return json.loads(self.body)


class Receiver:
    """Answers each request with the next of `statuses`, then 200. With `drip`, a slow
    server: the answer's body comes one byte every `drip` seconds, for ever."""

    def __init__(self, *statuses: int, drip: float = 0.0) -> None:
        self.requests: List[Received] = []
        received, answers = self.requests, list(statuses)
        closing = self.closing = threading.Event()

        class Handler(BaseHTTPRequestHandler):
            def _record(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                received.append(Received(self.command, self.path, dict(self.headers), body))
                self.send_response(answers.pop(0) if answers else 200)
                self.send_header("Content-Length", "1000000" if drip else "0")
                self.end_headers()
                try:
                    while drip and not closing.wait(drip):
                        self.wfile.write(b"x")
                        self.wfile.flush()
                except OSError:  # the client hung up
                    pass

            do_GET = do_POST = do_PUT = _record

            def log_message(self, *args) -> None:  # keep the test output clean
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def at(self, path: str) -> List[Received]:
        return [r for r in self.requests if r.path == path]

    def close(self) -> None:
        self.closing.set()
        self.server.shutdown()
        self.server.server_close()


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (it was free a moment ago)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
