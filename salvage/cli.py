"""The `salvage` command line. Heavy modules (docker-py) are imported inside the commands,
so `salvage --help` and `--version` stay fast.

Exit codes: 0 all volumes backed up; 1 some failed; 2 a configuration, label or usage
problem (click's own usage errors exit 2 as well).
"""

from __future__ import annotations

import contextlib
import json
import sys
from typing import List, Tuple

import click

from salvage import __version__

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2


def _fail(lines, code: int = EXIT_CONFIG):
    for line in lines:
        click.echo(f"error: {line}", err=True)
    sys.exit(code)


def _config(ctx: click.Context):
    from salvage.config import ConfigError, load

    try:
        return load(ctx.obj["config"])
    except ConfigError as error:
        _fail(error.problems)


def _engine(config):
    from salvage.engine.client import Engine, EngineError

    try:
        return Engine(config.docker.timeout, config.docker.retries)
    except EngineError as error:
        _fail([error], EXIT_FAILED)


@contextlib.contextmanager
def _locked(config):
    """One salvage at a time (salvage.lock); a clear error when the wait is too long."""
    import logging

    from salvage import lock

    def waiting(holder: str) -> None:
        logging.getLogger("salvage").warning(
            "waiting for another salvage (%s) to finish (up to %.0f s)", holder,
            config.lock_timeout,
        )  # fmt: skip

    try:
        with lock.hold(config.state_directory, config.lock_timeout, waiting):
            yield
    except lock.LockTimeout as error:
        _fail([error], EXIT_FAILED)
    except OSError as error:
        _fail([f"state directory {config.state_directory}: {error.strerror}"], EXIT_FAILED)


def _tides(config, tides: Tuple[str, ...]) -> List[str]:
    for tide in tides:
        if tide not in config.tides:
            known = ", ".join(sorted(config.tides)) or "none"
            _fail([f'no tide named "{tide}" in {config.path} (tides: {known})'])
    return list(dict.fromkeys(tides)) or sorted(config.tides)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="salvage")
@click.option(
    "-c",
    "--config",
    metavar="PATH",
    envvar="SALVAGE_CONFIG",
    help="Configuration file [default: /etc/salvage/salvage.toml; env SALVAGE_CONFIG].",
)
@click.option("-v", "--verbose", is_flag=True, help="Log more.")
@click.pass_context
def main(ctx: click.Context, config: str, verbose: bool) -> None:
    """Back up Docker volumes consistently: containers are stopped, paused or hooked,
    a crane container backs up each volume, and every container is put back as it was."""
    from salvage import log

    log.setup(verbose)
    ctx.obj = {"config": config}


TIDE = click.option(
    "-t",
    "--tide",
    "tides",
    multiple=True,
    metavar="NAME",
    help="Tide to act on (repeatable) [default: every tide, one after another].",
)


@main.command()
@TIDE
@click.pass_context
def run(ctx: click.Context, tides: Tuple[str, ...]) -> None:
    """Back up the volumes of a tide now."""
    from salvage import observers
    from salvage.actions import run as action

    config = _config(ctx)
    names = _tides(config, tides)
    interactive = sys.stderr.isatty()
    engine = _engine(config)
    with _locked(config):
        sys.exit(action.run(engine, config, names, observers.for_config(config, interactive)))


@main.command()
@TIDE
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def plan(ctx: click.Context, tides: Tuple[str, ...], as_json: bool) -> None:
    """Show what a run would do: groups, containers and their actions. Changes nothing."""
    from salvage.actions.plan import render
    from salvage.engine.discovery import discover
    from salvage.planning import plan_tide

    config = _config(ctx)
    names = _tides(config, tides)
    host = discover(_engine(config))
    plans = [plan_tide(host, config, name) for name in names]
    if as_json:
        click.echo(json.dumps([p.as_dict() for p in plans], indent=2, ensure_ascii=False))
    else:
        click.echo(render(plans))
    problems = [p for plan in plans for p in plan.problems]
    problems += [p for plan in plans for group in plan.groups for p in group.problems]
    sys.exit(EXIT_CONFIG if problems else EXIT_OK)


@main.command()
@click.pass_context
def check(ctx: click.Context) -> None:
    """Check the configuration and the labels on this host; list every problem."""
    from salvage.actions.check import check as action

    config = _config(ctx)
    problems = action(_engine(config), config)
    if problems:
        _fail(problems)
    click.echo(f"{config.path}: {len(config.tides)} tide(s), labels on this host: no problems")


@main.command()
@click.pass_context
def recover(ctx: click.Context) -> None:
    """Bring back every container a salvage run left down (after a crash or a kill)."""
    from salvage.actions.recover import recover as action

    config = _config(ctx)
    engine = _engine(config)
    with _locked(config):
        sys.exit(EXIT_FAILED if action(engine, config) else EXIT_OK)
