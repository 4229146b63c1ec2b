"""Database dumps taken while the database runs, and replayed into it (docs/dumps.md).

A dump is `docker exec` of the dump script in the database's container, its standard
output copied frame by frame into the standard input of a crane (SALVAGE_SOURCE=stdin)
that stores it as `<container>.dump`. A replay is the reverse: the crane writes the
snapshot on its standard output (SALVAGE_TARGET=stdout) into the standard input of the
restore script's exec. Neither touches a file on the host, and the container is never
stopped or paused.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from typing import Optional, Tuple

from salvage.actions.snapshots import RestoreError, choose, snapshots
from salvage.config import Config
from salvage.core import dumps
from salvage.core.dumps import Dump
from salvage.crane.backup_report import Report
from salvage.crane.invoke import Call
from salvage.engine import containers
from salvage.engine.client import Engine, describe
from salvage.engine.cranes import (
    check_secrets,
    container_name,
    ensure_image,
    mark_stream_complete,
)
from salvage.engine.discovery import discover
from salvage.engine.streams import Stderr, close_input, exec_exit_code, exec_start, pump, raw
from salvage.errors import SalvageError

log = logging.getLogger("salvage")


class CraneGone(SalvageError):
    """The crane closed its input before the dump's end."""


def _meta(dump: Dump) -> dict:
    """What meta.json says of the dump (there is no volume)."""
    return {
        "dump": {
            "container": dump.container.name,
            "kind": dump.kind,
            "volumes": list(dump.container.volumes),
        }
    }


def take(
    engine: Engine, call: Call, dump: Dump, cancelled: Optional[threading.Event] = None
) -> Tuple[Optional[int], Optional[Report], Optional[str]]:
    """Dump the running database into a crane: (the crane's exit code, its report, why
    the dump failed or None). A dump that fails never becomes a snapshot: its crane is
    killed before its input ends."""
    state = containers.current(engine, dump.container.id).state
    if state != "running":
        return None, None, f'container "{dump.container.name}" is {state}: not dumped'
    failure: list = []
    started = time.monotonic()
    execs = engine.unbounded()

    def send(chunk: bytes) -> None:
        try:
            raw(crane_input[0]).sendall(chunk)
        except OSError:
            raise CraneGone() from None

    def feed(crane_socket) -> None:
        errors = Stderr()
        crane_input.append(crane_socket)
        try:
            exec_id, output = exec_start(execs, dump.container.id, dump.command, stdin=False)
            outputs.append(output)
            try:
                pump(output, send, errors)
            finally:
                output.close()
            code = exec_exit_code(execs, exec_id)
            if code == 0:
                # The crane keeps the stream only when told it is whole: an input that ends
                # because salvage died (the engine closes it) is then no snapshot.
                mark_stream_complete(engine, container_name(dump.name, call.run_id))
                close_input(crane_socket)
                return
            why = errors.last_line()
            failure.append(f"the dump exited with {code}" + (f": {why}" if why else ""))
        except CraneGone:  # its exit code says why
            failure.append(f'crane "{call.crane.name}" stopped reading the dump')
        except Exception as error:  # the engine went away
            failure.append(f"the dump failed: {describe(error)}")
        finally:
            fed.set()
        try:  # before its input ends: a killed crane keeps nothing
            engine.api.kill(container_name(dump.name, call.run_id))
        except Exception:
            pass

    crane_input: list = []
    outputs: list = []
    fed = threading.Event()
    try:
        code, report = call.backup(engine, dump.name, cancelled, stdin=feed, meta=_meta(dump))
        if not fed.wait(timeout=5):  # the crane has exited, the dump still runs
            failure.insert(0, f'crane "{call.crane.name}" stopped reading the dump')
            for output in outputs:  # the dump's next write fails: it ends
                with contextlib.suppress(OSError):
                    raw(output).shutdown(socket.SHUT_RDWR)
    finally:
        execs.close()
    log.debug("dump %s: %.2f s", dump.name, time.monotonic() - started)
    if failure and failure[0].endswith("stopped reading the dump"):
        # Even with exit 0 its snapshot lacks the rest: a crane without SALVAGE_SOURCE=stdin.
        return code, None, f"{failure[0]} (exit {code}; does it take SALVAGE_SOURCE=stdin?)"
    return code, report, failure[0] if failure else None


def restore(
    engine: Engine,
    config: Config,
    container: str,
    snapshot: Optional[str] = None,
    tide: Optional[str] = None,
) -> str:
    """Replay a dump of `container` into it, running: the snapshot's id; RestoreError, in
    one line, when the replay did not succeed."""
    dump, tides, problems = dumps.find(discover(engine), container)
    if problems or dump is None:  # find says why when there is none
        raise RestoreError(str(problems[0]))
    if not dump.restore:
        raise RestoreError(f'container "{container}": needs {dumps.DUMP_RESTORE} to replay a dump')
    known = [name for name in tides if name in config.tides]
    if tide:
        if tide not in config.tides:
            raise RestoreError(f'no tide named "{tide}" in {config.path}')
    elif len(known) == 1:
        tide = known[0]
    else:
        raise RestoreError(
            f"dump {dump.name}: which tide's crane? choose with --tide"
            f" ({', '.join(known or sorted(config.tides))})"
        )
    call = Call.new(config, config.tides[tide])
    try:
        check_secrets(call.crane)
        ensure_image(engine, call.crane)
    except Exception as error:
        raise RestoreError(describe(error)) from None
    chosen = choose(call.crane.name, dump.name, snapshots(engine, call, dump.name), snapshot)
    state = containers.current(engine, dump.container.id).state
    if state != "running":
        raise RestoreError(f'container "{container}" is {state}: a dump replays into a running one')
    log.info("dump %s: replaying snapshot %s into container %s", dump.name, chosen.id, container)
    execs = engine.unbounded()
    replay_errors, crane_errors = Stderr(), Stderr()
    try:
        exec_id, into = exec_start(execs, dump.container.id, dump.restore, stdin=True)
        # The replay's own output, read meanwhile: a full pipe would stall it.
        reader = threading.Thread(target=pump, args=(into, lambda _: None, replay_errors))
        reader.daemon = True
        reader.start()

        def sink(crane_output) -> None:
            try:
                pump(crane_output, raw(into).sendall, crane_errors)
            except OSError as error:  # the replay stopped reading: its error says why
                log.debug("dump %s: replay input closed: %s", dump.name, error)
            finally:
                close_input(into)

        try:
            code, _ = call.run(engine, "restore", dump.name, snapshot=chosen.id, stdout=sink)
        except Exception as error:
            close_input(into)
            raise RestoreError(f'crane "{call.crane.name}": {describe(error)}') from None
        # A replay ends once its input has; one that does not never got the end of its input
        # (an HTTP proxy that does not pass exec input, docs/dumps.md): not waited for ever.
        reader.join(timeout=call.tide.crane_timeout)
        if reader.is_alive():
            raise RestoreError(
                f'container "{container}": the replay did not end within'
                f" {call.tide.crane_timeout:.0f} s (crane_timeout) of its input's end: did its"
                " input reach it? (a socket proxy passes no exec input: docs/dumps.md)"
            )
        replayed = exec_exit_code(execs, exec_id)
        into.close()
    except RestoreError:
        raise
    except Exception as error:
        raise RestoreError(f'container "{container}": replay failed: {describe(error)}') from None
    finally:
        execs.close()
    if code != 0:
        why = crane_errors.last_line()
        raise RestoreError(
            f'crane "{call.crane.name}" could not read snapshot {chosen.id} of {dump.name}:'
            f" exit {code}" + (f": {why}" if why else "")
        )
    if replayed != 0:
        why = replay_errors.last_line()
        raise RestoreError(
            f'container "{container}": the replay of {dump.name} {chosen.id} exited with'
            f" {replayed}" + (f": {why}" if why else "")
        )
    return chosen.id
