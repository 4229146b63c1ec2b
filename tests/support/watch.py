"""Docker's own record of what happened to some containers, as it happens.

The engine keeps only its last 256 events: on an engine that other tests keep busy, asking
afterwards (harness.events) can come too late. This subscribes before and reads along.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Iterator, List, Tuple

import docker

Event = Tuple[str, str, float]  # container name, action, epoch seconds


@contextlib.contextmanager
def container_events(host: str, names: List[str]) -> Iterator[List[Event]]:
    """The events of these containers while the block runs, in order."""
    client = docker.APIClient(base_url=host, version="auto")
    stream = client.events(decode=True, filters={"type": "container", "container": names})
    seen: List[Event] = []

    def read() -> None:
        with contextlib.suppress(Exception):  # the stream ends with an error when closed
            for event in stream:
                name = event.get("Actor", {}).get("Attributes", {}).get("name")
                seen.append((name, event["Action"].split(":")[0], event["timeNano"] / 1e9))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        yield seen
    finally:
        # Events arrive a moment after the calls that caused them.
        time.sleep(0.3)
        stream.close()
        reader.join(timeout=5)
        client.close()
