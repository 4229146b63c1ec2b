"""The `salvage` command line. Heavy modules (docker-py) are imported inside the commands,
so `salvage --help` and `--version` stay fast.

Exit codes: salvage.errors. salvage's own exceptions (salvage.errors.SalvageError) and the
engine's end in one handler (_Salvage): one line each, never a traceback.
"""

from __future__ import annotations

import contextlib
import json
import sys
from typing import List, Optional, Tuple

import click

from salvage import __version__
from salvage.errors import EXIT_CONFIG, EXIT_FAILED, EXIT_OK, SalvageError


def _log_errors(lines) -> None:
    import logging

    for line in lines:  # through the log: in the journal, at priority err
        logging.getLogger("salvage").error("%s", line)


def _fail(lines, code: int = EXIT_CONFIG):
    _log_errors(lines)
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
    """One salvage at a time (salvage.safety.lock); a clear error when the wait is too long.
    `service` (salvage.systemd.notify) shows the wait in `systemctl status`."""
    import errno
    import logging

    from salvage.safety import lock

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
        if tide not in config.tides and not config.found:
            _fail(
                [
                    f'no tide named "{tide}": no configuration file was found (looked for'
                    f" {config.path}; --config or SALVAGE_CONFIG name another), so the only"
                    f' tide is the built-in "{next(iter(config.tides))}"'
                ]
            )
        if tide not in config.tides:
            known = ", ".join(sorted(config.tides)) or "none"
            _fail([f'no tide named "{tide}" in {config.path} (tides: {known})'])
    return list(dict.fromkeys(tides)) or sorted(config.tides)


def _configured(config, tides: Tuple[str, ...], service) -> Tuple[str, ...]:
    """The tides still in the configuration; exit 0 when none of those asked for is
    (after READY=1: a Type=notify unit that exits before it has failed)."""
    import logging

    from salvage.core.model import Problem

    for tide in tides:
        if tide not in config.tides:
            why = f"not in {config.path} (removed?): nothing to do; `systemctl daemon-reload`"
            logging.getLogger("salvage").warning(
                "%s", Problem(f'tide "{tide}"', why + " removes its timer")
            )
    kept = tuple(tide for tide in tides if tide in config.tides)
    if tides and not kept:
        service.ready("no such tide in the configuration: nothing to do")
        sys.exit(EXIT_OK)
    return kept


class _Salvage(click.Group):
    """Whatever fails, a person sees one line and an exit code, never a traceback: the one
    handler of salvage's own errors (their exit code) and the engine's (EXIT_FAILED)."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except SalvageError as error:
            _fail(error.lines(), error.exit_code)
        except Exception as error:
            from salvage.engine.client import describe
            from salvage.engine.errors import from_engine

            if not from_engine(error):
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
@click.option("-q", "--quiet", is_flag=True, help="Log only warnings and errors.")
@click.pass_context
def main(ctx: click.Context, config: str, verbose: bool, quiet: bool) -> None:
    """Back up Docker volumes consistently: containers are stopped, paused or hooked,
    a crane container backs up each volume, and every container is put back as it was."""
    import logging

    from salvage import log

    if verbose and quiet:
        raise click.UsageError("--verbose and --quiet contradict each other")
    log.setup(verbose, logging.WARNING if quiet else None)
    ctx.obj = {"config": config, "quiet": quiet}


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


def _observers(config, interactive: bool = False) -> list:
    """The observers of a run under this configuration (salvage.report.observers). Each concern
    adds itself here, imported lazily so that a command that does not run a tide does not
    pay for it."""
    from salvage.report.history import Recorder

    observers: list = [Recorder(config)]
    if config.metrics_directory:
        from salvage.report.metrics import Metrics

        observers.append(Metrics(config))  # after the Recorder: it reads the history
    if config.notify:
        from salvage.report.notify import Notifier

        observers.append(Notifier(config))
    if interactive:
        from salvage.report.progress import Progress

        observers.append(Progress())
    from salvage.systemd import inhibit, notify

    # First: it may veto a group, and the others then never hear of its containers leaving.
    observers.insert(0, inhibit.Inhibitor(config.inhibit))
    if notify.service().active:
        observers.append(notify.Status(notify.service(), config))
    return observers


@main.command()
@TIDE
@click.option("-n", "--dry-run", is_flag=True, help="Change nothing: show the plan (`plan`).")
@click.option(
    "--if-configured",
    is_flag=True,
    help="A --tide not in the configuration is a notice, not an error (salvage@.service:"
    " the timer of a removed tide).",
)
@click.pass_context
def run(ctx: click.Context, tides: Tuple[str, ...], dry_run: bool, if_configured: bool) -> None:
    """Back up the volumes of a tide now."""
    if dry_run:
        return ctx.invoke(plan, tides=tides, as_json=False)  # it exits
    from salvage.actions import run as action
    from salvage.safety.downtime import signals_unwind
    from salvage.systemd import notify

    # Under systemd: READY=1 once the lock is held, STOPPING=1 (and EXIT_STATUS=) at the end.
    with notify.service() as service:
        config = _config(ctx)
        if if_configured:
            tides = _configured(config, tides, service)
        names = _tides(config, tides)
        interactive = sys.stderr.isatty() and not ctx.obj.get("quiet")  # no progress with -q
        engine = _engine(config)
        # Signals unwind from the moment the lock is held (before that, nothing is touched).
        with signals_unwind(), _locked(config, service):
            service.ready(f"running tide{'s' * (len(names) > 1)} {', '.join(names)}")
            sys.exit(action.run(engine, config, names, _observers(config, interactive)))


@main.command()
@TIDE
@JSON
@click.pass_context
def plan(ctx: click.Context, tides: Tuple[str, ...], as_json: bool) -> None:
    """Show what a run would do: groups, containers and their actions. Changes nothing."""
    from salvage.actions.plan import dump_dicts, render
    from salvage.core.dumps import tide_dumps
    from salvage.core.planning import plan_tide
    from salvage.engine.discovery import discover

    config = _config(ctx)
    names = _tides(config, tides)
    host = discover(_engine(config), [config.tides[name] for name in names])
    plans = [plan_tide(host, config, name) for name in names]
    dumped = {name: tide_dumps(host, name) for name in names}
    if as_json:
        found = [{**p.as_dict(), "dumps": dump_dicts(p, dumped[p.tide.name][0])} for p in plans]
        click.echo(json.dumps(found, indent=2, ensure_ascii=False))
    else:
        click.echo(render(plans, dumped))
    problems = [p for plan in plans for p in plan.problems]
    problems += [p for _, bad in dumped.values() for p in bad]
    problems += [p for plan in plans for group in plan.groups for p in group.problems]
    sys.exit(EXIT_CONFIG if problems else EXIT_OK)


@main.command()
@click.option(
    "--offline",
    is_flag=True,
    help="Without the engine: the file, schedules, cranes and secret files, not the labels.",
)
@JSON
@click.pass_context
def check(ctx: click.Context, offline: bool, as_json: bool) -> None:
    """Check the configuration and the labels on this host; list every problem."""
    from salvage.actions import check as action

    config = _config(ctx)
    problems = action.offline(config)  # reported even when the engine cannot be reached
    unreachable = None
    if not offline:
        from salvage.engine.client import Engine, EngineError

        try:
            engine = Engine(config.docker.timeout, config.docker.retries)
        except EngineError as error:
            unreachable = error
        else:
            problems += action.labels(engine, config)
    if as_json:
        lines = [str(p) for p in problems] + ([str(unreachable)] if unreachable else [])
        click.echo(json.dumps({"problems": lines}, indent=2))
    elif problems or unreachable:
        _log_errors(problems + ([unreachable] if unreachable else []))
    elif offline:
        click.echo(f"{config.path}: {len(config.tides)} tide(s): no problems (labels not checked)")
    else:
        click.echo(f"{config.path}: {len(config.tides)} tide(s), labels on this host: no problems")
    sys.exit(EXIT_CONFIG if problems else EXIT_FAILED if unreachable else EXIT_OK)


@main.command()
@JSON
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Per tide: the last run, its result and the next one; per volume: the last good
    backup and its age. Exits 1 when a last run failed or a volume is overdue."""
    from salvage.actions import status as action
    from salvage.terminal import Paint

    config = _config(ctx)
    tides = action.report(config)  # HistoryError: _Salvage
    if as_json:
        click.echo(json.dumps(tides, indent=2, ensure_ascii=False))
    else:
        click.echo(action.render(tides, Paint(sys.stdout)))
    sys.exit(EXIT_OK if action.healthy(tides) else EXIT_FAILED)


@main.command()
@click.option(
    "-t",
    "--tide",
    "tides",
    multiple=True,
    metavar="NAME",
    shell_complete=_complete_tides,
    help="Only this tide's runs (repeatable).",
)
@click.option(
    "--volume",
    "volumes",
    multiple=True,
    metavar="NAME",
    help="Only the runs that backed up this volume, and only its lines (repeatable).",
)
@click.option(
    "-n",
    "--limit",
    default=20,
    show_default=True,
    type=click.IntRange(min=1),
    help="At most this many runs, newest first.",
)
@JSON
@click.pass_context
def history(
    ctx: click.Context,
    tides: Tuple[str, ...],
    volumes: Tuple[str, ...],
    limit: int,
    as_json: bool,
) -> None:
    """The recorded runs, newest first, with each volume's result, time and downtime."""
    from salvage.actions.history import render
    from salvage.report.history import History
    from salvage.terminal import Paint

    config = _config(ctx)
    runs = History(config.state_directory).runs(tides, volumes, limit)  # HistoryError: _Salvage
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

    completer = get_completion_class(shell)
    if completer is None:  # click.Choice lets only the known shells through
        raise click.UsageError(f"no completion for {shell}")
    script = completer(main, {}, "salvage", "_SALVAGE_COMPLETE")
    click.echo(script.source())


@main.command()
@click.option(
    "--if-idle",
    is_flag=True,
    help="Do nothing when another salvage holds the lock (it recovers when it starts).",
)
@click.pass_context
def recover(ctx: click.Context, if_idle: bool) -> None:
    """Bring back every container a salvage run left down (after a crash or a kill)."""
    from salvage.actions.recover import recover as action
    from salvage.safety.downtime import signals_unwind
    from salvage.safety.lock import is_held

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


MACHINE = click.option(
    "-m",
    "--machine",
    metavar="NAME",
    help="Whose snapshots: another machine's (its `machine` setting) [default: this one's].",
)


@main.command()
@click.argument("volume", required=False)
@click.option("-t", "--tide", metavar="NAME", help="The tide whose crane holds the snapshots.")
@MACHINE
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def snapshots(ctx: click.Context, volume: str, tide: str, machine: str, as_json: bool) -> None:
    """List what can be restored of VOLUME, newest first (asks the crane). With --machine
    and no VOLUME: every volume that machine has snapshots of."""
    from salvage.actions import snapshots as action
    from salvage.actions.restore_host import pick_tide
    from salvage.crane.invoke import Call

    config = _config(ctx)
    if not volume and not machine:
        _fail(["snapshots: name a VOLUME, or a --machine to list its volumes"])
    engine = _engine(config)
    if volume:
        call = Call.new(config, action.tide_of(engine, config, volume, tide), machine)
        found = action.snapshots(engine, call, volume)  # RestoreError: _Salvage
        if as_json:
            click.echo(json.dumps([s.as_dict() for s in found], indent=2))
        else:
            click.echo(action.describe(found))
        return
    call = Call.new(config, pick_tide(config, tide), machine)
    listed = {v: action.snapshots(engine, call, v) for v in action.machine_volumes(engine, call)}
    if as_json:
        click.echo(json.dumps({v: [s.as_dict() for s in f] for v, f in listed.items()}, indent=2))
    else:
        click.echo(action.describe_volumes(machine, listed))


@main.command()
@click.argument("volume", required=False)
@click.option(
    "-s",
    "--snapshot",
    metavar="ID",
    help="Which snapshot, or latest [default: the newest not marked inconsistent].",
)
@click.option(
    "--dump",
    "dump",
    metavar="CONTAINER",
    help="Replay a dump of this running"
    " database container into it (its salvage.dump label), instead of a volume.",
)
@click.option(
    "--yes", is_flag=True, help="Confirm --dump: the replay overwrites the database's data."
)
@click.option(
    "--to",
    "to",
    metavar="NAME",
    help="Restore into another volume (created), or"
    " into a new host directory (/new/path, which must not exist).",
)
@click.option("-t", "--tide", metavar="NAME", help="The tide whose crane holds the snapshots.")
@MACHINE
@click.option(
    "--all",
    "every",
    is_flag=True,
    help="Every volume the machine has snapshots of (a whole host), instead of VOLUME.",
)
@click.option(
    "--before",
    metavar="TIME",
    help="The newest snapshot taken before TIME"
    " (ISO 8601, e.g. 2026-11-26T03:00; local time unless it says).",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="With --all: print what would be created and restored; change nothing.",
)
@click.option(
    "--force",
    is_flag=True,
    help="Restore over a volume that holds data (after a safety backup of it).",
)
@click.option(
    "--trust-meta-options",
    "trust_meta",
    is_flag=True,
    help="Create a missing volume with the driver and driver options in the snapshot's"
    " metadata [default: driver local, no options].",
)
@click.pass_context
def restore(
    ctx: click.Context,
    volume: str,
    snapshot: str,
    dump: str,
    yes: bool,
    to: str,
    tide: str,
    machine: str,
    every: bool,
    before: str,
    dry_run: bool,
    force: bool,
    trust_meta: bool,
):
    """Restore VOLUME from a snapshot; the containers using it are stopped meanwhile.
    With --all, every volume of a machine (--machine), e.g. on a new host. With --dump
    CONTAINER --yes, replay a database dump into its running container."""
    from salvage.actions.restore import restore as action
    from salvage.actions.snapshots import moment
    from salvage.safety.downtime import signals_unwind

    if dump:
        if machine or every or before or dry_run:
            _fail(["restore --dump: takes no --machine, --all, --before or --dry-run"], EXIT_CONFIG)
        _restore_dump(ctx, dump, volume, yes, to, force, snapshot, tide)
        return
    config = _config(ctx)
    wrong = (
        "name a VOLUME, --all, or --dump CONTAINER"
        if not volume and not every
        else "--all restores every volume: no VOLUME with it"
        if volume and every
        else "--to and --snapshot are for one VOLUME, not --all"
        if every and (to or snapshot)
        else "--dry-run goes with --all"
        if dry_run and not every
        else "--before or --snapshot, not both"
        if before and snapshot
        else None
    )
    when = moment(before) if before else None
    if before and not when:
        wrong = f"--before {before}: not a time (e.g. 2026-11-26T03:00 or 2026-11-26)"
    if wrong:
        _fail([f"restore: {wrong}"])
    engine = _engine(config)
    if every:
        from salvage.actions.restore_host import restore_all, table

        with signals_unwind(), _locked(config):
            done = restore_all(
                engine, config, machine or config.machine, tide, when, dry_run, force, trust_meta
            )
        click.echo(table(done))
        if not all(o.ok for o in done):
            sys.exit(EXIT_FAILED)
        return
    with signals_unwind(), _locked(config):  # a signal unwinds: the users are started again
        problems = action(
            engine, config, volume, snapshot, to, tide, force, trust_meta, machine, when
        )
    if problems:
        _fail(problems, EXIT_FAILED)


def _restore_dump(ctx, container, volume, yes, to, force, snapshot, tide) -> None:
    from salvage.actions.dump import restore as action

    if volume or to or force:
        _fail(["restore --dump: takes no VOLUME, --to or --force"], EXIT_CONFIG)
    if not yes:
        _fail(
            [
                f"restore --dump {container}: the replay overwrites the database's data:"
                " confirm with --yes"
            ],
            EXIT_CONFIG,
        )
    config = _config(ctx)
    engine = _engine(config)
    with _locked(config):
        chosen = action(engine, config, container, snapshot, tide)  # RestoreError: _Salvage
    click.echo(f"replayed {container}.dump {chosen} into container {container}")


@main.command()
@TIDE
@click.argument("volumes", nargs=-1, metavar="[VOLUME]...")
@click.option(
    "--restore",
    is_flag=True,
    help="Also restore the snapshot into a throwaway"
    " volume and compare it with the manifest recorded at backup time.",
)
@click.pass_context
def verify(
    ctx: click.Context, tides: Tuple[str, ...], volumes: Tuple[str, ...], restore: bool
) -> None:
    """Check that the newest snapshot of each volume (every volume of the tides, without
    VOLUME) is intact, through the crane's verify action. Stops no container. Exits 1,
    with one line per volume, when one is not."""
    from salvage.actions import verify as action
    from salvage.actions.snapshots import RestoreError

    config = _config(ctx)
    names = _tides(config, tides) if tides or not volumes else []
    engine = _engine(config)
    with _locked(config):  # restic's check locks its repository: never beside a backup
        try:
            checked, bad = action.verify(engine, config, names, volumes, restore)
        except RestoreError as error:
            _fail([error], EXIT_FAILED)
    if bad:
        _fail(bad, EXIT_FAILED)
    click.echo(f"verified {checked} volume(s): the newest snapshot of each is intact")


@main.command("proxy-config")
@click.option(
    "--rules",
    metavar="PATH",
    help="Where HAProxy finds the proxy's Lua rules (default: the file shipped with salvage;"
    " --print-rules prints it, for an HAProxy that sees another file system).",
)
@click.option("--print-rules", is_flag=True, help="Print the proxy's Lua rules instead.")
@click.pass_context
def proxy_config(ctx: click.Context, rules: Optional[str], print_rules: bool) -> None:
    """Print the HAProxy configuration of a Docker socket proxy for this salvage.toml
    (docs/docker-api.md). It needs HAProxy with Lua and lua-cjson."""
    from salvage.actions import proxy_config as action

    if print_rules:
        click.echo(action.RULES.read_text(), nl=False)
        return
    click.echo(action.render(_config(ctx), rules), nl=False)  # ProxyConfigError: _Salvage


@main.group("config")
def config_group() -> None:
    """The configuration file's format (`salvage check --offline` checks the file)."""


@config_group.command("schema")
def config_schema() -> None:
    """Print salvage.toml's JSON Schema, for editors (docs/configuration.md)."""
    from salvage.config.json_schema import json_schema

    click.echo(json.dumps(json_schema(), indent=2))
