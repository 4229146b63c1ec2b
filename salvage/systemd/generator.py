"""The systemd generator: one enabled timer per tide, from the configuration file, so that
schedules live in one place and no one edits timer units by hand.

systemd runs it at boot and on `systemctl daemon-reload` as
`salvage-generator NORMAL_DIR [EARLY_DIR LATE_DIR]`. For each tide it writes into NORMAL_DIR
a drop-in for `salvage@<tide>.timer` (an instance of the shipped template) with the tide's
`schedule`, `randomized_delay` and `persistent`, and a link in timers.target.wants/ that
enables the timer. A tide without a schedule runs daily. The template has no schedule of its
own, so a tide removed from the configuration leaves a timer that never fires.

The services run under `ProtectSystem=strict`: only their StateDirectory= is writable. A
`metrics_directory` and a `state_directory` other than the default are made writable by a
drop-in for both services (`ReadWritePaths=`).

Generators run early at boot and must never hold it up: on a bad configuration it writes
nothing, says why in one line per problem, and exits 1. A schedule systemd's own calendar
parser refuses (`systemd-analyze calendar`) would make a timer that never fires: that tide
gets no timer, the others do, one line says why, and it exits 1.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Iterable, List, Optional

from salvage.config import ConfigError, load
from salvage.config.schema import DEFAULT_STATE_DIRECTORY, Config, Tide
from salvage.core.model import Problem
from salvage.systemd import calendar
from salvage.systemd.schedule import timer

TEMPLATE = "/usr/lib/systemd/system/salvage@.timer"
VERIFY_TEMPLATE = "/usr/lib/systemd/system/salvage-verify@.timer"
KMSG = "/dev/kmsg"
# A template's drop-in covers each tide.
SERVICES = ("salvage.service", "salvage@.service", "salvage-verify@.service")
UNIT_NAME_MAX = 255  # systemd's limit for a unit name


def problems(config: Config) -> List[Problem]:
    """Tide names that cannot name a systemd unit."""
    found = []
    for name in config.tides:
        if not name:
            found.append(Problem(f"{config.path}: tides", "a tide needs a name"))
        elif len(timer(name, "salvage-verify")) > UNIT_NAME_MAX:
            too_long = f"the name is too long for a systemd unit ({timer(name, 'salvage-verify')})"
            found.append(Problem(f"{config.path}: tides.{name}", too_long))
    return found


def drop_in(tide: Tide, source: str, schedule: Optional[str] = None) -> str:
    lines = [
        f"# From {source} by salvage-generator: change the tide there, then run",
        "# `systemctl daemon-reload`.",
        "[Timer]",
        "OnCalendar=",  # empties the list: the drop-in alone says when
        f"OnCalendar={_unit_text(schedule or tide.schedule or 'daily')}",
        f"RandomizedDelaySec={tide.randomized_delay:g}s",
        f"Persistent={'true' if tide.persistent else 'false'}",
    ]
    return "\n".join(lines) + "\n"


def writable(config: Config) -> List[str]:
    """The directories salvage writes to that ProtectSystem=strict leaves read-only."""
    paths = [config.metrics_directory]
    if config.state_directory.rstrip("/") != DEFAULT_STATE_DIRECTORY:  # StateDirectory=
        paths.append(config.state_directory)
    return [path for path in paths if path]


def paths_drop_in(paths: List[str], source: str) -> str:
    # "-": a missing directory is salvage's to report (one line), not a failed namespace.
    quoted = ['"-' + _unit_text(p).replace("\\", "\\\\").replace('"', '\\"') + '"' for p in paths]
    lines = [
        f"# From {source} by salvage-generator (metrics_directory, state_directory):",
        "# writable under ProtectSystem=strict.",
        "[Service]",
        *(f"ReadWritePaths={path}" for path in quoted),
    ]
    return "\n".join(lines) + "\n"


def generate(config: Config, directory: Path, skip: Iterable[str] = ()) -> List[str]:
    """Write the timers' drop-ins and enabling links into `directory`, and the services'
    drop-in for the directories they write to; the timers' unit names."""
    paths = writable(config)
    if paths:
        for service in SERVICES:
            (directory / f"{service}.d").mkdir(parents=True, exist_ok=True)
            (directory / f"{service}.d" / "paths.conf").write_text(
                paths_drop_in(paths, config.path), encoding="utf-8"
            )
    wants = directory / "timers.target.wants"
    wants.mkdir(parents=True, exist_ok=True)
    units = []
    for tide in config.tides.values():
        if tide.name in skip:
            continue
        unit = timer(tide.name)
        (directory / f"{unit}.d").mkdir(exist_ok=True)
        (directory / f"{unit}.d" / "schedule.conf").write_text(
            drop_in(tide, config.path), encoding="utf-8"
        )
        link = wants / unit
        if link.is_symlink():
            link.unlink()
        link.symlink_to(TEMPLATE)
        units.append(unit)
        if tide.verify_schedule:  # `salvage verify --tide`, on a timer of its own
            unit = timer(tide.name, "salvage-verify")
            (directory / f"{unit}.d").mkdir(exist_ok=True)
            (directory / f"{unit}.d" / "schedule.conf").write_text(
                drop_in(tide, config.path, tide.verify_schedule), encoding="utf-8"
            )
            link = wants / unit
            if link.is_symlink():
                link.unlink()
            link.symlink_to(VERIFY_TEMPLATE)
            units.append(unit)
    return units


def _error(text: str) -> None:
    """One line for the journal. Run by systemd (SYSTEMD_SCOPE set), a generator's stderr is
    /dev/null and syslog is not up yet: the kernel log it is, at priority err (<3>), as
    systemd.generator(7) says; journald reads it from there. Otherwise stderr."""
    line = f"salvage-generator: {text}"
    if os.environ.get("SYSTEMD_SCOPE"):
        try:
            with open(KMSG, "w", encoding="utf-8") as kmsg:
                kmsg.write(f"<3>{line}\n")
            return
        except OSError:
            pass  # no /dev/kmsg (a container): stderr, for what it is worth
    print(line, file=sys.stderr)


def main(argv: Optional[List[str]] = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not 1 <= len(args) <= 3:
        print("usage: salvage-generator NORMAL_DIR [EARLY_DIR LATE_DIR]", file=sys.stderr)
        return 2
    try:
        config = load()
    except ConfigError as error:
        for problem in error.problems:
            _error(f"{problem}; no timers")
        return 1
    found = problems(config)
    for problem in found:
        _error(f"{problem}; no timers")
    if found:
        return 1
    bad = calendar.problems(config)
    for problem in bad.values():
        _error(f"{problem}; no timer for this tide")
    try:
        generate(config, Path(args[0]), skip=bad)
    except OSError as error:
        _error(f"{args[0]}: {error.strerror}")
        return 1
    return 1 if bad else 0


def _unit_text(value: str) -> str:
    return value.replace("%", "%%")  # "%" starts a specifier in unit files


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
