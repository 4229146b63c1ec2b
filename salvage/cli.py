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
    import logging

    for line in lines:  # through the log: in the journal, at priority err
        logging.getLogger("salvage").error("%s", line)
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
def _locked(config, service=None, timeout=None):
    """One salvage at a time (salvage.lock); a clear error when the wait is too long.
    `service` (salvage.systemd.notify) shows the wait in `systemctl status`."""
    import errno
    import logging

    from salvage import lock

    timeout = config.lock_timeout if timeout is None else timeout

    def waiting(holder: str) -> None:
        line = f"waiting for another salvage ({holder}) to finish (up to {timeout:.0f} s)"
        logging.getLogger("salvage").warning("%s", line)
        if service:
            service.waiting(line, timeout)

    with contextlib.ExitStack() as held:
        try:  # only taking the lock: what the run itself raises is not a lock problem
            held.enter_context(lock.hold(config.state_directory, timeout, waiting))
        except lock.LockTimeout as error:
            if service:
                service.errno = errno.ETIMEDOUT
            _fail([error], EXIT_FAILED)
        except OSError as error:
            if service:
                service.errno = error.errno
            _fail([f"state directory {config.state_directory}: {error.strerror}"], EXIT_FAILED)
        yield


def _tides(config, tides: Tuple[str, ...]) -> List[str]:
    for tide in tides:
        if tide not in config.tides:
            known = ", ".join(sorted(config.tides)) or "none"
            _fail([f'no tide named "{tide}" in {config.path} (tides: {known})'])
    return list(dict.fromkeys(tides)) or sorted(config.tides)


class _Salvage(click.Group):
    """Whatever the engine does, a person sees one line and an exit code, never a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except Exception as error:
            from salvage.downtime import Interrupted
            from salvage.engine.client import EngineError, describe
            from salvage.record import RecordDamaged, RecordError

            if isinstance(error, RecordDamaged):  # a person must look before salvage acts
                _fail([error], EXIT_CONFIG)
            if isinstance(error, (RecordError, Interrupted)):
                _fail([error], EXIT_FAILED)
            engine = type(error).__module__.split(".")[0] in ("docker", "requests", "urllib3")
            if not (engine or isinstance(error, EngineError)):
                raise
            _fail([describe(error)], EXIT_FAILED)


@click.group(cls=_Salvage, context_settings={"help_option_names": ["-h", "--help"]})
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


def _complete_tides(ctx: click.Context, param, incomplete: str) -> List[str]:
    """Shell completion: the tides of the configuration the command line names."""
    from salvage.config import ConfigError, load

    try:
        config = load(ctx.find_root().params.get("config"))
    except ConfigError:
        return []
    return [name for name in sorted(config.tides) if name.startswith(incomplete)]


TIDE = click.option(
    "-t",
    "--tide",
    "tides",
    multiple=True,
    metavar="NAME",
    shell_complete=_complete_tides,
    help="Tide to act on (repeatable) [default: every tide, one after another].",
)
JSON = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


@main.command()
@TIDE
@click.pass_context
def run(ctx: click.Context, tides: Tuple[str, ...]) -> None:
    """Back up the volumes of a tide now."""
    from salvage import observers
    from salvage.actions import run as action
    from salvage.downtime import signals_unwind
    from salvage.systemd import notify

    # Under systemd: READY=1 once the lock is held, STOPPING=1 (and EXIT_STATUS=) at the end.
    with notify.service() as service:
        config = _config(ctx)
        names = _tides(config, tides)
        interactive = sys.stderr.isatty()
        engine = _engine(config)
        # Signals unwind from the moment the lock is held (before that, nothing is touched).
        with signals_unwind(), _locked(config, service):
            service.ready(f"running tide{'s' * (len(names) > 1)} {', '.join(names)}")
            sys.exit(action.run(engine, config, names, observers.for_config(config, interactive)))


@main.command()
@TIDE
@JSON
@click.pass_context
def plan(ctx: click.Context, tides: Tuple[str, ...], as_json: bool) -> None:
    """Show what a run would do: groups, containers and their actions. Changes nothing."""
    from salvage.actions.plan import render
    from salvage.engine.discovery import discover
    from salvage.planning import plan_tide

    config = _config(ctx)
    names = _tides(config, tides)
    host = discover(_engine(config), names)
    plans = [plan_tide(host, config, name) for name in names]
    if as_json:
        click.echo(json.dumps([p.as_dict() for p in plans], indent=2, ensure_ascii=False))
    else:
        click.echo(render(plans))
    problems = [p for plan in plans for p in plan.problems]
    problems += [p for plan in plans for group in plan.groups for p in group.problems]
    sys.exit(EXIT_CONFIG if problems else EXIT_OK)


@main.command()
@JSON
@click.pass_context
def check(ctx: click.Context, as_json: bool) -> None:
    """Check the configuration and the labels on this host; list every problem."""
    from salvage.actions.check import check as action

    config = _config(ctx)
    problems = action(_engine(config), config)
    if as_json:
        click.echo(json.dumps({"problems": [str(p) for p in problems]}, indent=2))
        sys.exit(EXIT_CONFIG if problems else EXIT_OK)
    if problems:
        _fail(problems)
    click.echo(f"{config.path}: {len(config.tides)} tide(s), labels on this host: no problems")


@main.command()
@JSON
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Per tide: the last run, its result and the next one; per volume: the last good
    backup and its age. Exits 1 when a last run failed or a volume is overdue."""
    from salvage.actions import status as action
    from salvage.history import HistoryError
    from salvage.terminal import Paint

    config = _config(ctx)
    try:
        tides = action.report(config)
    except HistoryError as error:
        _fail([error], EXIT_FAILED)
    if as_json:
        click.echo(json.dumps(tides, indent=2, ensure_ascii=False))
    else:
        click.echo(action.render(tides, Paint(sys.stdout)))
    sys.exit(EXIT_OK if action.healthy(tides) else EXIT_FAILED)


@main.command()
@click.option(
    "-t", "--tide", "tides", multiple=True, metavar="NAME", shell_complete=_complete_tides,
    help="Only this tide's runs (repeatable).",
)  # fmt: skip
@click.option(
    "--volume", "volumes", multiple=True, metavar="NAME",
    help="Only the runs that backed up this volume, and only its lines (repeatable).",
)  # fmt: skip
@click.option(
    "-n", "--limit", default=20, show_default=True, type=click.IntRange(min=1),
    help="At most this many runs, newest first.",
)  # fmt: skip
@JSON
@click.pass_context
def history(
    ctx: click.Context, tides: Tuple[str, ...], volumes: Tuple[str, ...], limit: int,
    as_json: bool,
) -> None:  # fmt: skip
    """The recorded runs, newest first, with each volume's result, time and downtime."""
    from salvage.actions.history import render
    from salvage.history import History, HistoryError
    from salvage.terminal import Paint

    config = _config(ctx)
    try:
        runs = History(config.state_directory).runs(tides, volumes, limit)
    except HistoryError as error:
        _fail([error], EXIT_FAILED)
    if as_json:
        click.echo(json.dumps(runs, indent=2, ensure_ascii=False))
    else:
        click.echo(render(runs, Paint(sys.stdout)))


@main.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> None:
    """Print the shell completion script for bash, zsh or fish.

    \b
    bash: salvage completion bash > /etc/bash_completion.d/salvage
    zsh:  salvage completion zsh > "${fpath[1]}/_salvage"
    fish: salvage completion fish > ~/.config/fish/completions/salvage.fish
    """
    from click.shell_completion import get_completion_class

    script = get_completion_class(shell)(main, {}, "salvage", "_SALVAGE_COMPLETE")
    click.echo(script.source())


@main.command()
@click.option(
    "--if-idle", is_flag=True,
    help="Do nothing when another salvage holds the lock (it recovers when it starts).",
)  # fmt: skip
@click.pass_context
def recover(ctx: click.Context, if_idle: bool) -> None:
    """Bring back every container a salvage run left down (after a crash or a kill)."""
    from salvage.actions.recover import recover as action
    from salvage.downtime import signals_unwind
    from salvage.lock import is_held

    config = _config(ctx)
    engine = _engine(config)
    if if_idle and is_held(config.state_directory):
        # The service's stop path: the live run recovers at its own start anyway, and
        # waiting for it here would outlast the unit's stop timeout.
        click.echo("another salvage is running: it recovers when it starts", err=True)
        sys.exit(EXIT_OK)
    with signals_unwind() as stopped, _locked(config):  # a signal never cuts recovery short
        problems = action(engine, config)
    if stopped:
        _fail([f"recover: interrupted ({stopped[0]}); recovery went on to its end"], EXIT_FAILED)
    sys.exit(EXIT_FAILED if problems else EXIT_OK)


@main.command()
@click.argument("volume")
@click.option("-t", "--tide", metavar="NAME", help="The tide whose crane holds the snapshots.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def snapshots(ctx: click.Context, volume: str, tide: str, as_json: bool) -> None:
    """List what can be restored of VOLUME, newest first (asks the crane)."""
    from salvage.actions import snapshots as action
    from salvage.invoke import Call

    config = _config(ctx)
    engine = _engine(config)
    try:
        call = Call.new(config, action.tide_of(engine, config, volume, tide))
        found = action.snapshots(engine, call, volume)
    except action.RestoreError as error:
        _fail([error], EXIT_FAILED)
    if as_json:
        click.echo(json.dumps([s.as_dict() for s in found], indent=2))
    else:
        click.echo(action.describe(found))


@main.command()
@click.argument("volume")
@click.option("-s", "--snapshot", metavar="ID", help="Which snapshot [default: the newest].")
@click.option("--to", "to", metavar="NAME", help="Restore into another volume (created).")
@click.option("-t", "--tide", metavar="NAME", help="The tide whose crane holds the snapshots.")
@click.option("--force", is_flag=True, help="Restore over a volume that holds data (after a"
              " safety backup of it).")  # fmt: skip
@click.pass_context
def restore(ctx: click.Context, volume: str, snapshot: str, to: str, tide: str, force: bool):
    """Restore VOLUME from a snapshot; the containers using it are stopped meanwhile."""
    from salvage.actions.restore import restore as action
    from salvage.actions.snapshots import RestoreError
    from salvage.downtime import signals_unwind

    config = _config(ctx)
    engine = _engine(config)
    with signals_unwind(), _locked(config):  # a signal unwinds: the users are started again
        try:
            problems = action(engine, config, volume, snapshot, to, tide, force)
        except RestoreError as error:
            _fail([error], EXIT_FAILED)
    if problems:
        _fail(problems, EXIT_FAILED)
