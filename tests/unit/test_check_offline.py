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
    return subprocess.run(
        [sys.executable, "-m", "salvage", "-c", str(path), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


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


def test_check_offline_passes_a_good_configuration_without_an_engine(tmp_path):
    secret = tmp_path / "restic-password"
    secret.write_text("s3cret\n")
    config = f"""
        [tides.nightly]
        schedule = "*-*-* 03:00"
        crane = "restic"
        [cranes.restic]
        image = "salvage/crane-restic:latest"
        secrets = {{ RESTIC_PASSWORD = "{secret}" }}
        """
    done = salvage(tmp_path, config, "check", "--offline")
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == f"{tmp_path}/salvage.toml: 1 tide(s): no problems (labels not checked)\n"


@needs_analyze
def test_check_offline_lists_every_problem_and_exits_2(tmp_path):
    (tmp_path / "a-directory").mkdir()
    config = f"""
        [tides.nightly]
        schedule = "every day at 3"
        crane = "restic"
        [cranes.restic]
        image = "salvage/crane-restic:latest"
        env = {{ KEY_FILE = "/elsewhere" }}
        secrets = {{ RESTIC_PASSWORD = "{tmp_path}/missing", KEY = "{tmp_path}/a-directory" }}
        """
    done = salvage(tmp_path, config, "check", "--offline")
    assert done.returncode == 2
    where = f"error: {tmp_path}/salvage.toml"
    assert done.stderr.splitlines() == [
        f"{where}: tides.nightly.schedule: 'every day at 3' is not a systemd calendar"
        " expression (see `man systemd.time`)",
        f"{where}: cranes.restic.secrets.RESTIC_PASSWORD: no file {tmp_path}/missing",
        f"{where}: cranes.restic.secrets.KEY: {tmp_path}/a-directory is not a file",
        f"{where}: cranes.restic.secrets.KEY: env KEY_FILE is set by salvage for this secret",
    ]
    assert done.stdout == ""


def test_check_offline_reports_a_file_that_is_not_toml(tmp_path):
    done = salvage(tmp_path, "[tides.nightly\n", "check", "--offline")
    assert done.returncode == 2
    assert done.stderr.startswith(f"error: {tmp_path}/salvage.toml: is not valid TOML: ")
    assert len(done.stderr.splitlines()) == 1
