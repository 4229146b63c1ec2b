"""`salvage check` without an engine: DOCKER_HOST names a socket that does not exist."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
needs_analyze = pytest.mark.skipif(
    not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed"
)


def salvage(tmp_path: Path, config: str, *args: str) -> subprocess.CompletedProcess:
    path = tmp_path / "salvage.toml"
    path.write_text(textwrap.dedent(config))
    path.chmod(0o600)
    env = dict(os.environ, PYTHONPATH=str(ROOT), DOCKER_HOST=f"unix://{tmp_path}/no.sock")
    env.pop("SALVAGE_CONFIG", None)
    return subprocess.run([sys.executable, "-m", "salvage", "-c", str(path), *args], env=env,
                          capture_output=True, text=True, timeout=60)  # fmt: skip


@needs_analyze
def test_check_reports_a_bad_schedule_when_the_engine_cannot_be_reached(tmp_path):
    done = salvage(tmp_path, '[tides.daily]\nschedule = "every day at 3"\n', "check")
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert lines[0] == (
        f"error: {tmp_path}/salvage.toml: tides.daily.schedule: 'every day at 3' is not a"
        " systemd calendar expression (see `man systemd.time`)"
    )
    assert len(lines) == 2 and f"unix://{tmp_path}/no.sock" in lines[1]
