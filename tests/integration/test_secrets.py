"""Crane secrets are files, mounted read-only, and their values show up nowhere else;
the configuration file's permissions are checked."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.boundary  # docs/testing.md: run again on the distribution's libraries

SECRET = "s3cr3t-value-Zq9"


def test_secret_file_reaches_the_crane_and_nothing_else(stack, salvage, tmp_path):
    vol = stack.volume("data")
    stack.container("app", [vol], labels={f"salvage.tide.{stack.tide}": f"g:{vol}"})
    secret = tmp_path / "restic-password"
    secret.write_text(SECRET)
    secret.chmod(0o600)
    out = salvage.backups
    salvage.use_script(
        """cat "$RESTIC_PASSWORD_FILE" > /out/seen; env > /out/env;
          (echo x > /run/secrets/RESTIC_PASSWORD) 2>/dev/null && echo writable > /out/ro;
          cp -r /salvage/meta /out/meta; echo crane done""",
        crane=f'secrets = {{ RESTIC_PASSWORD = "{secret}" }}',
    )
    done = salvage("run")
    plan = salvage("plan", "--json")
    assert done.returncode == 0, done.stderr
    assert (out / "seen").read_text() == SECRET
    assert not (out / "ro").exists()  # mounted read-only
    assert "RESTIC_PASSWORD_FILE=/run/secrets/RESTIC_PASSWORD" in (out / "env").read_text()
    assert SECRET not in (out / "env").read_text()
    assert SECRET not in json.dumps(json.loads((out / "meta" / "meta.json").read_text()))
    assert SECRET not in done.stderr + done.stdout + plan.stdout + plan.stderr
    assert secret.read_text() == SECRET


def test_missing_secret_file_fails_before_any_container_is_touched(stack, salvage, tmp_path):
    vol = stack.volume("data")
    stack.container("app", [vol], labels={f"salvage.tide.{stack.tide}": f"g:{vol}"})
    salvage.use_tar(crane=f'secrets = {{ PW = "{tmp_path}/nope" }}')
    before = stack.states()
    done = salvage("run")
    assert done.returncode == 1
    assert f'error: crane "tar": secret PW: no file {tmp_path}/nope' in done.stderr
    assert stack.states() == before and not (tmp_path / "nope").exists()


def test_config_writable_by_others_is_refused_and_readable_warned(stack, salvage):
    config = salvage.use_tar()
    config.chmod(0o666)
    done = salvage("check")
    assert done.returncode == 2
    assert done.stderr.strip() == f"error: {config}: is writable by others: refused (chmod o-w)"
    config.chmod(0o644)
    done = salvage("check")
    assert f"warning: {config} is readable by others; it may hold credentials" in done.stderr
