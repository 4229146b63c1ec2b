"""The engine the benchmarks run on, and everything they create on it.

DOCKER_HOST when it answers, else a private dockerd (own socket and data root under /tmp)
stopped by its pid at the end, as the integration tests do. Whatever a benchmark creates
carries the label `salvage-bench.run=<run id>`, so that cleanup finds it even after a failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import List, Optional

import docker
from docker.errors import DockerException

from tests.support.dockerd import PrivateDockerd, ping  # the tests' own, shared

ROOT = Path(__file__).resolve().parents[1]
BUSYBOX = "salvage-bench/busybox:latest"
TAR_CRANE = "salvage-bench/crane-tar:latest"
LABEL = "salvage-bench.run"
MB = 1024 * 1024


class Events:
    """Docker's own record of our containers' events, collected as they happen."""

    def __init__(self, host: str, run_id: str) -> None:
        self.api = docker.APIClient(base_url=host, version="auto", timeout=None)
        self.seen: List[dict] = []
        self.stream = self.api.events(
            decode=True, filters={"type": "container", "label": f"{LABEL}={run_id}"}
        )
        self.thread = threading.Thread(target=self._collect, name="events", daemon=True)
        self.thread.start()

    def _collect(self) -> None:
        try:
            for event in self.stream:
                self.seen.append(event)
        except Exception:
            pass  # the stream was closed

    def downtime(self, container_id: str, since: float, wait: float = 5.0) -> float:
        """Seconds from the container's first `die` after `since` to the `start` after it."""
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            times = [
                (e["Action"], e["timeNano"])
                for e in list(self.seen)
                if e.get("id") == container_id and e["timeNano"] >= since * 1e9
            ]
            die = next((t for action, t in times if action == "die"), None)
            start = next((t for action, t in times if action == "start" and die and t > die), None)
            if start:
                return (start - die) / 1e9
            time.sleep(0.05)
        raise RuntimeError(f"no die and start events for container {container_id[:12]}")

    def close(self) -> None:
        try:
            self.stream.close()
        except Exception:
            pass
        self.api.close()


class Engine:
    """The engine, the images, a scratch directory, and cleanup of all we create."""

    def __init__(self, private: Optional[PrivateDockerd] = None) -> None:
        """`private`: an engine of the benchmark's own (B8's XFS data root), started here."""
        self.run_id = uuid.uuid4().hex[:8]
        self.private: Optional[PrivateDockerd] = None
        host = os.environ.get("DOCKER_HOST", "")
        if private:
            self.private = private
            try:
                host = private.start().host
            except BaseException:
                private.remove()
                raise
        elif not host or not ping(host):
            print(f"DOCKER_HOST={host or '(unset)'} does not answer: starting a private dockerd")
            # A bridge of its own: it must not touch docker0, which another engine may use.
            self.private = PrivateDockerd("salvage-bench-dockerd-", f"slvb{os.getpid() % 100000}")
            host = self.private.start().host
        try:
            self.host = host
            self.env = dict(os.environ, DOCKER_HOST=host)
            self.api = docker.APIClient(base_url=host, version="auto", timeout=300)
            self.tmp = Path(tempfile.mkdtemp(prefix=f"salvage-bench-{self.run_id}-"))
            self.tides: List[str] = []
            self.events = Events(host, self.run_id)
            # How busy the machine and engine were, for the report (others may share them).
            self.before = {"load": os.getloadavg()[0], "containers": self.api.info()["Containers"]}
        except BaseException:
            if self.private:
                self.private.remove()
            raise

    @property
    def labels(self) -> dict:
        return {LABEL: self.run_id}

    def name(self, what: str) -> str:
        return f"sb{self.run_id}-{what}"

    def build_images(self) -> None:
        """The busybox base from the host's static busybox, and the tar crane on it."""
        for command in (
            [str(ROOT / "scripts/busybox-image"), BUSYBOX],
            [
                "docker",
                "build",
                "-q",
                "--build-arg",
                f"BASE={BUSYBOX}",
                "-t",
                TAR_CRANE,
                str(ROOT / "salvage/crane/images/tar"),
            ],
        ):
            done = subprocess.run(command, env=self.env, capture_output=True, text=True)
            if done.returncode != 0:
                raise RuntimeError(f"{' '.join(command)}: {done.stderr.strip()}")

    def volume(self, what: str, labels: Optional[dict] = None) -> str:
        name = self.name(what)
        self.api.create_volume(name, labels={**self.labels, **(labels or {})})
        return name

    def fill(self, volumes: List[str], size: int = 100 * MB) -> None:
        """Random bytes (incompressible, like media or encrypted data) in each volume."""
        binds = [f"{v}:/v{i}" for i, v in enumerate(volumes)]
        script = " && ".join(
            f"head -c {size} /dev/urandom > /v{i}/data.bin" for i in range(len(volumes))
        )
        self.run_once(["sh", "-c", script], binds)
        self.filled = time.monotonic()

    def settle(self, seconds: float = 45.0) -> None:
        """Wait until the data last filled is older than staging's live-copy margin (40 s
        with the kernel's default writeback): as most of a volume is at a nightly backup.
        Newer files are copied again while the containers are down (README, Staging)."""
        left = getattr(self, "filled", 0.0) + seconds - time.monotonic()
        if left > 0:
            print(f"waiting {left:.0f} s for the data to be older than the margin", flush=True)
            time.sleep(left)

    def run_once(self, command: List[str], binds: List[str]) -> None:
        created = self.api.create_container(
            BUSYBOX,
            command,
            labels=self.labels,
            host_config=self.api.create_host_config(binds=binds, network_mode="none"),
        )
        try:
            self.api.start(created["Id"])
            status = self.api.wait(created["Id"], timeout=300)["StatusCode"]
            if status != 0:
                raise RuntimeError(f"{command} exited with {status}")
        finally:
            self.api.remove_container(created["Id"], force=True)

    def service(
        self,
        what: str,
        volumes: List[str],
        labels: dict,
        start: bool = True,
        command: Optional[List[str]] = None,
    ) -> str:
        """A container like a small service: tini as PID 1, so it stops at once on SIGTERM
        (unless `command` says otherwise)."""
        config = self.api.create_host_config(
            binds=[f"{v}:/data/{i}" for i, v in enumerate(volumes)],
            init=True,
            network_mode="none",
        )
        created = self.api.create_container(
            BUSYBOX,
            command or ["sleep", "3600"],
            name=self.name(what),
            host_config=config,
            labels={**self.labels, **labels},
            stop_signal="SIGTERM",
        )
        if start:
            self.api.start(created["Id"])
        return created["Id"]

    def tide(self, what: str) -> str:
        """A tide name of this run only (others' stacks on a shared engine do not count)."""
        name = f"b{self.run_id}{what}"
        self.tides.append(name)
        return name

    def cleanup(self) -> None:
        """Remove every container and volume of this run; failures are reported, not raised."""
        self.events.close()
        mine = {"label": f"{LABEL}={self.run_id}"}
        # Our containers, then salvage's cranes of our tides (left by a run cut short).
        filters = [mine] + [{"label": f"salvage.crane.tide={tide}"} for tide in self.tides]
        containers = [
            c
            for f in filters
            for c in self._quietly(self.api.containers, all=True, filters=f) or ()
        ]
        volumes = (self._quietly(self.api.volumes, filters=mine) or {}).get("Volumes") or ()
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(
                pool.map(
                    lambda c: self._quietly(self.api.remove_container, c["Id"], force=True),
                    containers,
                )
            )
            list(pool.map(lambda v: self._quietly(self.api.remove_volume, v["Name"]), volumes))
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.api.close()
        if self.private:
            self.private.remove()

    @staticmethod
    def _quietly(call, *args, **kwargs):
        try:
            return call(*args, **kwargs)
        except DockerException as error:
            print(f"cleanup: {error}")
            return None
