"""`-q` and `run --dry-run` on a real engine: what a person used to borgmatic or restic
types."""

from __future__ import annotations

import time

import pytest
from support.harness import events

pytestmark = pytest.mark.boundary  # docs/testing.md: run again on the distribution's libraries


def _labelled(stack) -> tuple:
    volume = stack.volume("data")
    app = stack.container("app", [volume], labels={f"salvage.tide.{stack.tide}": f"g:{volume}"})
    return volume, app


def test_quiet_run_logs_only_warnings_and_errors(stack, salvage):
    volume, _ = _labelled(stack)
    salvage.use_tar()
    salvage.config.chmod(0o604)  # readable by others: a warning, which -q keeps
    done = salvage("-q", "run", "--tide", stack.tide)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert lines[0] == (
        f"warning: {salvage.config} is readable by others; it may hold credentials (chmod o-r)"
    )
    assert [line for line in lines if not line.startswith("warning: ")] == []
    assert list(salvage.archives()) == [volume]  # it did back up

    loud = salvage("run", "--tide", stack.tide)  # the same run says what it does
    assert f"tide {stack.tide}: 1 volume backed up, 0 failed" in loud.stderr


def test_run_dry_run_is_plan_and_touches_nothing(stack, salvage, api):
    _labelled(stack)
    salvage.use_tar()
    plan = salvage("plan", "--tide", stack.tide)
    since = time.time()
    dry = salvage("run", "--dry-run", "--tide", stack.tide)
    assert (dry.returncode, dry.stdout) == (plan.returncode, plan.stdout) == (0, plan.stdout)
    assert f"tide {stack.tide}: crane tar" in dry.stdout
    assert salvage.archives() == {}
    assert [e for e in events(api, since) if e[0].startswith(stack.prefix)] == []
