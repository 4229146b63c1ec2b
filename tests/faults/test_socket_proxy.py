"""salvage behind a socket proxy that allows only the API calls it makes
(examples/socket-proxy/haproxy.cfg, HAProxy from Debian), and with one of them denied."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from support.scene import CALM, wait_for

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "examples/socket-proxy/haproxy.cfg"


@pytest.fixture
def proxy(scene, tmp_path):
    """Start HAProxy with the shipped allow-list, minus the lines given; stop it by pid."""
    procs = []

    def start(deny: str = "") -> str:
        if not shutil.which("haproxy"):
            pytest.fail("haproxy is not installed: run `make deps`")
        lines = CONFIG.read_text().splitlines()
        config = tmp_path / "haproxy.cfg"
        config.write_text("".join(f"{line}\n" for line in lines if not deny or deny not in line))
        socket = tmp_path / "proxy.sock"
        env = dict(os.environ, SALVAGE_PROXY_SOCKET=str(socket),
                   DOCKER_SOCKET=scene.engine.host[len("unix://"):])  # fmt: skip
        procs.append(subprocess.Popen(["haproxy", "-db", "-f", str(config)], env=env,
                                      stderr=open(tmp_path / "haproxy.log", "w")))  # fmt: skip
        wait_for(socket.exists, "the proxy's socket")
        return f"unix://{socket}"

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(timeout=10)


def test_everything_salvage_needs_passes_the_allow_list(scene, proxy):
    vol = scene.volume("data")
    scene.container("stopped", [vol], scene.label(vol))
    scene.container("paused", [vol], {"salvage.action": "pause"})
    scene.container(
        "hooked", [vol], {"salvage.command.pre": "true", "salvage.command.post": "true"}
    )
    scene.snapshot()
    scene.go()
    host = proxy()
    done = scene.salvage("run", DOCKER_HOST=host)
    assert done.returncode == 0, done.stderr
    assert (scene.out / f"{vol}.copy" / "data").read_text() == "important\n"
    assert scene.salvage("recover", DOCKER_HOST=host).returncode == 0
    assert scene.observe() == CALM


def test_proxy_denying_one_endpoint(scene, proxy, table):
    vol = scene.volume("data")
    paused = scene.container("app", [vol], {**scene.label(vol), "salvage.action": "pause"})
    scene.snapshot()
    scene.go()
    done = scene.salvage("run", DOCKER_HOST=proxy(deny="/pause$"))
    container_id = scene.states()[paused][0]
    assert (
        f"the Docker engine refused POST /containers/{container_id}/pause (403 Forbidden)"
        in done.stderr
    ), done.stderr
    table("the socket proxy denying one endpoint (pause)", f"exit 1; {CALM}",
          f"exit {done.returncode}; {scene.observe()}")  # fmt: skip


def test_a_refused_call_outside_a_run_is_one_line_too(scene, proxy):
    vol = scene.volume("data")
    scene.config = scene.write_config()
    done = scene.salvage("snapshots", vol, "--tide", scene.tide,
                         DOCKER_HOST=proxy(deny="/containers/create$"))  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "error: the Docker engine refused POST /containers/create (403 Forbidden): does a"
        " socket proxy in front of it allow this call? (see docs/docker-api.md)"
    ], done.stderr
