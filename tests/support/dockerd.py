"""A private Docker engine for tests: its own socket, data and exec roots under /tmp,
started and stopped (by its pid) by the test session, and restartable mid-test."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Optional

import docker

from support.cache import locked


def ping(host: str) -> bool:
    try:
        return docker.APIClient(base_url=host, timeout=2).ping()
    except Exception:
        return False


def make_bridge(name: str) -> None:
    """A bridge with a subnet of its own: engines left to choose would all take the same
    one, and their routes would clash."""
    with locked("bridges"):
        used = subprocess.run(["ip", "-o", "-4", "addr"], capture_output=True, text=True).stdout
        free = next(n for n in range(1, 255) if f" 10.213.{n}." not in used)
        subprocess.run(["ip", "link", "add", name, "type", "bridge"], check=True)
        subprocess.run(["ip", "addr", "add", f"10.213.{free}.1/24", "dev", name], check=True)
        subprocess.run(["ip", "link", "set", name, "up"], check=True)


class PrivateDockerd:
    """`bridge`: a bridge interface of its own, created here, so that this engine never
    touches docker0 (which another engine on the host may be using)."""

    def __init__(self, prefix: str = "salvage-dockerd-", bridge: Optional[str] = None) -> None:
        self.base = Path(tempfile.mkdtemp(prefix=prefix))
        self.host = f"unix://{self.base}/docker.sock"
        self.bridge = bridge
        self.proc: Optional[subprocess.Popen] = None

    def args(self) -> list:
        args = [
            "dockerd",
            "--host",
            self.host,
            "--data-root",
            str(self.base / "root"),
            "--exec-root",
            str(self.base / "exec"),
            "--pidfile",
            str(self.base / "docker.pid"),
            "--shutdown-timeout",
            "2",
        ]
        if self.bridge:
            args += ["--bridge", self.bridge, "--iptables=false", "--ip6tables=false"]
        return args

    def start(self) -> PrivateDockerd:
        if not shutil.which("dockerd"):
            raise RuntimeError("dockerd is not installed: run `make test` (it installs docker.io)")
        if self.bridge and not Path(f"/sys/class/net/{self.bridge}").exists():
            make_bridge(self.bridge)
        log = open(self.base / "dockerd.log", "ab")
        self.proc = subprocess.Popen(self.args(), stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + 60
        while not ping(self.host):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.proc.kill()
                raise RuntimeError("dockerd did not start:\n" + self.log())
            time.sleep(0.2)
        return self

    def log(self) -> str:
        return (self.base / "dockerd.log").read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def restart(self) -> None:
        self.stop()
        self.start()

    def remove(self) -> None:
        self.stop()
        if self.bridge:
            subprocess.run(["ip", "link", "delete", self.bridge], check=False)
        shutil.rmtree(self.base, ignore_errors=True)
