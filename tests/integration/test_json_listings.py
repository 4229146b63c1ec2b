"""Every listing has --json: `check` lists its problems as JSON (plan, status and history
are shown in their own tests)."""

from __future__ import annotations

import json


def test_check_lists_its_problems_as_json(stack, salvage):
    volume = stack.volume("odd")
    bad = stack.container(
        "bad",
        [volume],
        labels={f"salvage.tide.{stack.tide}": f"g:{volume}", "salvage.action": "explode"},
    )
    salvage.use_tar()
    done = salvage("check", "--json")
    assert done.returncode == 2
    problems = json.loads(done.stdout)["problems"]
    line = f'container "{bad}": label salvage.action: "explode" is not one of stop, pause, ignore'
    assert line in problems
