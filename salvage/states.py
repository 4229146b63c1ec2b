"""Safe states and their reversal: what salvage does to a container, and how it undoes it.

Only a container that is running when salvage reaches it is changed: stop or pause it,
and later start or unpause it. Every change is returned as a `Change`, the one thing the
caller needs to undo it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from salvage.engine import containers
from salvage.engine.client import Engine, describe
from salvage.labels import Settings
from salvage.model import Container, Problem

UNDO = {"stop": containers.start, "pause": containers.unpause}


@dataclass(frozen=True)
class Change:
    container: Container
    action: str  # "stop" or "pause"
    prior: str  # the state it was in: always "running" today


def enter(engine: Engine, container: Container, action: str, stop_timeout: int) -> Change:
    if action == "stop":
        containers.stop(engine, container.id, stop_timeout)
    elif action == "pause":
        containers.pause(engine, container.id)
    else:
        raise ValueError(action)
    return Change(container, action, "running")


def leave(engine: Engine, change: Change) -> None:
    UNDO[change.action](engine, change.container.id)


def run_command(
    engine: Engine,
    container: Container,
    settings: Settings,
    which: str,
    timeout: float,
) -> Optional[Problem]:
    """Run the pre or post command; a Problem when its exit code aborts under the policy."""
    command = settings.pre if which == "pre" else settings.post
    where = f'container "{container.name}": {which}-command "{command}"'
    try:
        code, output = containers.execute(engine, container.id, command, settings.user, timeout)
    except containers.CommandTimeout as error:
        return Problem(where, str(error))
    except Exception as error:  # any engine failure is the command's failure
        return Problem(where, f"could not run: {describe(error)}")
    last = output.strip().splitlines()[-1] if output.strip() else ""
    if code != 0 and settings.exit_policy.aborts(code):
        return Problem(where, f"exited with {code}" + (f": {last}" if last else ""))
    return None
