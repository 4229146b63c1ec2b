"""An engine salvage cannot reach: one line naming the socket and the likely fix, never
docker-py's own text. Real sockets: none at all, one nothing listens on, and one that the
user (nobody) may not open."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from support import unprivileged

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def shared():
    directory = unprivileged.shared_directory()
    yield directory
    shutil.rmtree(directory)


def salvage(config: Path, host: str, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), DOCKER_HOST=host)
    return subprocess.run(
        [sys.executable, "-m", "salvage", "-c", str(config), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_no_socket_says_is_the_engine_running(shared):
    config = unprivileged.config_for_nobody(shared, "")
    host = f"unix://{shared}/docker.sock"
    for command in ("plan", "run", "recover"):
        done = salvage(config, host, command)
        assert (done.returncode, done.stdout) == (1, "")
        assert done.stderr.splitlines() == [
            f"error: cannot reach the Docker engine at {host}: no socket there: is the engine"
            " running (sudo systemctl start docker)? Otherwise set DOCKER_HOST to its address"
        ]


def test_a_socket_nothing_listens_on(shared):
    path = shared / "docker.sock"
    with socket.socket(socket.AF_UNIX) as dead:
        dead.bind(str(path))  # closed without listening: connect() is refused
    done = salvage(unprivileged.config_for_nobody(shared, ""), f"unix://{path}", "plan")
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"error: cannot reach the Docker engine at unix://{path}: nothing answers there: is the"
        " engine running (sudo systemctl start docker)? Otherwise set DOCKER_HOST to its address"
    ]


@pytest.mark.skipif(bool(unprivileged.why_not()), reason=str(unprivileged.why_not()))
def test_a_socket_the_user_may_not_open_says_sudo_or_the_docker_group(shared):
    path = shared / "docker.sock"
    with socket.socket(socket.AF_UNIX) as engine:
        engine.bind(str(path))
        engine.listen(1)
        path.chmod(0o600)  # root's, as /var/run/docker.sock is root:docker 0660
        config = unprivileged.config_for_nobody(shared, "")
        done = unprivileged.run("-c", str(config), "plan", env={"DOCKER_HOST": f"unix://{path}"})
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr.splitlines() == [
        f"error: cannot reach the Docker engine at unix://{path}: permission denied: this user"
        " is neither root nor in the group docker: run salvage with sudo, or join the group"
        " (sudo usermod -aG docker $USER, then log in again), or set DOCKER_HOST to an engine"
        " this user may use"
    ]
