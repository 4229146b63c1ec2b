"""The systemd generator: one enabled timer per tide, from the configuration file, so that
schedules live in one place and no one edits timer units by hand.

systemd runs it at boot and on `systemctl daemon-reload` as
`salvage-generator NORMAL_DIR [EARLY_DIR LATE_DIR]`. For each tide it writes into NORMAL_DIR
a drop-in for `salvage@<tide>.timer` (an instance of the shipped template) with the tide's
`schedule`, `randomized_delay` and `persistent`, and a link in timers.target.wants/ that
enables the timer. A tide without a schedule runs daily. The template has no schedule of its
own, so a tide removed from the configuration leaves a timer that never fires.

Generators run early at boot and must never hold it up: on a bad configuration it writes
nothing, says why in one line per problem, and exits 1.
"""

from __future__ import annotations

import string
import sys
from pathlib import Path
from typing import List, Optional

from salvage.config import ConfigError, load
from salvage.config.schema import Config, Tide
from salvage.model import Problem

TEMPLATE = "/usr/lib/systemd/system/salvage@.timer"
UNIT_NAME_MAX = 255  # systemd's limit for a unit name
_PLAIN = frozenset(string.ascii_letters + string.digits + ":_.")


def escape(text: str) -> str:
    """An instance name, as `systemd-escape` makes it: "/" becomes "-", and every byte of
    the UTF-8 text outside [A-Za-z0-9:_.] (and a leading ".") becomes \\xNN."""
    out = []
    for index, byte in enumerate(text.encode("utf-8")):
        char = chr(byte)
        if char == "/":
            out.append("-")
        elif char in _PLAIN and not (index == 0 and char == "."):
            out.append(char)
        else:
            out.append(f"\\x{byte:02x}")
    return "".join(out)


def timer(tide: str) -> str:
    return f"salvage@{escape(tide)}.timer"


def problems(config: Config) -> List[Problem]:
    """Tide names that cannot name a systemd unit."""
    found = []
    for name in config.tides:
        if not name:
            found.append(Problem(f"{config.path}: tides", "a tide needs a name"))
        elif len(timer(name)) > UNIT_NAME_MAX:
            too_long = f"the name is too long for a systemd unit ({timer(name)})"
            found.append(Problem(f"{config.path}: tides.{name}", too_long))
    return found


def drop_in(tide: Tide, source: str) -> str:
    lines = [
        f"# From {source} by salvage-generator: change the tide there, then run",
        "# `systemctl daemon-reload`.",
        "[Timer]",
        "OnCalendar=",  # empties the list: the drop-in alone says when
        f"OnCalendar={_unit_text(tide.schedule or 'daily')}",
        f"RandomizedDelaySec={tide.randomized_delay:g}s",
        f"Persistent={'true' if tide.persistent else 'false'}",
    ]
    return "\n".join(lines) + "\n"


def generate(config: Config, directory: Path) -> List[str]:
    """Write the timers' drop-ins and enabling links into `directory`; their unit names."""
    wants = directory / "timers.target.wants"
    wants.mkdir(parents=True, exist_ok=True)
    units = []
    for tide in config.tides.values():
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
    return units


def main(argv: Optional[List[str]] = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not 1 <= len(args) <= 3:
        print("usage: salvage-generator NORMAL_DIR [EARLY_DIR LATE_DIR]", file=sys.stderr)
        return 2
    try:
        config = load()
    except ConfigError as error:
        for problem in error.problems:
            print(f"salvage-generator: {problem}; no timers", file=sys.stderr)
        return 1
    found = problems(config)
    for problem in found:
        print(f"salvage-generator: {problem}; no timers", file=sys.stderr)
    if found:
        return 1
    try:
        generate(config, Path(args[0]))
    except OSError as error:
        print(f"salvage-generator: {args[0]}: {error.strerror}", file=sys.stderr)
        return 1
    return 0


def _unit_text(value: str) -> str:
    return value.replace("%", "%%")  # "%" starts a specifier in unit files


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
