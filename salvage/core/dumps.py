"""Databases dumped while they run: the `salvage.dump*` container labels (pure).

    salvage.dump=postgres|mariadb|mysql|custom   what runs inside the container
    salvage.dump.tide=<tide>[,<tide>...]          the tides whose runs take the dump
    salvage.dump.command=<sh script>              the dump (required for custom; overrides)
    salvage.dump.restore=<sh script>              its replay, reading standard input

The container keeps running. Each script runs as `sh -c SCRIPT` through `docker exec`, so
it sees the container's own environment: credentials are read from there (or from the
files its `*_FILE` variables name) by the shell, never written on a command line. The
dump's standard output is the backup `<container>.dump` (docs/dumps.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Collection, Dict, List, Optional, Tuple

from salvage.core.labels import where
from salvage.core.model import Container, Host, Problem

DUMP = "salvage.dump"
DUMP_TIDE = "salvage.dump.tide"
DUMP_COMMAND = "salvage.dump.command"
DUMP_RESTORE = "salvage.dump.restore"
LABELS = (DUMP, DUMP_TIDE, DUMP_COMMAND, DUMP_RESTORE)
SUFFIX = ".dump"

# `secret NAME`: $NAME, or the content of the file $NAME_FILE names (the official images'
# convention). Only variable names are on the exec's command line, never their values.
_SECRET = """secret() {
    eval "file=\\${${1}_FILE:-}" ; eval "value=\\${${1}:-}"
    if [ -n "$file" ]; then cat "$file"; else printf %s "$value"; fi
}
"""
_POSTGRES = (
    _SECRET
    + """PGUSER=$(secret POSTGRES_USER); export PGUSER="${PGUSER:-postgres}"
PGPASSWORD=$(secret POSTGRES_PASSWORD); export PGPASSWORD
[ -n "$PGPASSWORD" ] || unset PGPASSWORD
"""
)
_MARIADB = (
    _SECRET
    + """MYSQL_PWD=$(secret MARIADB_ROOT_PASSWORD)
[ -n "$MYSQL_PWD" ] || MYSQL_PWD=$(secret MYSQL_ROOT_PASSWORD)
export MYSQL_PWD
client() {  # mariadb-dump / mariadb, or the mysql names of older images and MySQL
    for name in "$@"; do command -v "$name" >/dev/null 2>&1 && { echo "$name"; return; }; done
    echo "none of $* in the container" >&2; exit 127
}
"""
)
BUILTIN = {
    "postgres": (
        _POSTGRES + "exec pg_dumpall --clean --if-exists\n",
        # The dump drops and recreates every database (close their connections first);
        # the replay stops at its first error.
        _POSTGRES
        + """# --clean cannot drop the role psql is connected as, nor create it again:
# those two lines of the globals (before the first \\connect, no data there) are left out.
awk -v u="$PGUSER" '!data && ($0 == "DROP ROLE IF EXISTS " u ";" || $0 == "CREATE ROLE " u ";")\
 { next } /^\\\\connect / { data = 1 } { print }' |
psql -X -q -v ON_ERROR_STOP=1 -d postgres -o /dev/null
""",
    ),
    "mariadb": (
        _MARIADB + "dump=$(client mariadb-dump mysqldump) || exit 127\n"
        'exec "$dump" -uroot --single-transaction --all-databases --routines --events\n',
        # The client stops at the first error, with a non-zero exit.
        _MARIADB + 'replay=$(client mariadb mysql) || exit 127\nexec "$replay" -uroot\n',
    ),
}
BUILTIN["mysql"] = BUILTIN["mariadb"]
KINDS = ("postgres", "mariadb", "mysql", "custom")


@dataclass(frozen=True)
class Dump:
    """One database container whose dump a tide takes."""

    container: Container
    kind: str
    command: str  # sh script inside the container: the dump on standard output
    restore: Optional[str]  # sh script inside the container: the dump on standard input

    @property
    def name(self) -> str:
        """The backup's name, in place of a volume's: snapshots, history, metrics."""
        return self.container.name + SUFFIX

    def as_dict(self) -> Dict[str, Any]:
        return {
            "name": self.name,
            "container": self.container.name,
            "id": self.container.id,
            "state": self.container.state,
            "kind": self.kind,
            "volumes": list(self.container.volumes),
        }


def parse(container: Container) -> Tuple[Optional[Dump], List[str], List[Problem]]:
    """The container's dump and the tides that take it, or the problems with its labels."""
    labels = container.labels
    present = [label for label in LABELS if label in labels]
    if not present:
        return None, [], []
    problems: List[Problem] = []
    kind = labels.get(DUMP, "").strip()
    if DUMP not in labels:
        problems.append(Problem(where(container, present[0]), f"needs {DUMP}=<{'|'.join(KINDS)}>"))
    elif kind not in KINDS:
        problems.append(
            Problem(where(container, DUMP), f'"{kind}" is not one of {", ".join(KINDS)}')
        )
    command = labels.get(DUMP_COMMAND, "").strip() or BUILTIN.get(kind, ("", None))[0]
    restore = labels.get(DUMP_RESTORE, "").strip() or BUILTIN.get(kind, ("", None))[1]
    if kind == "custom" and not command:
        problems.append(Problem(where(container, DUMP), f"custom needs {DUMP_COMMAND}"))
    tides = [t.strip() for t in labels.get(DUMP_TIDE, "").split(",") if t.strip()]
    if not tides and DUMP in labels:
        problems.append(
            Problem(where(container, DUMP), f"names no tide: add {DUMP_TIDE}=<tide>[,<tide>]")
        )
    if problems:
        return None, tides, problems
    return Dump(container, kind, command, restore), tides, []


def tide_dumps(host: Host, tide: str) -> Tuple[List[Dump], List[Problem]]:
    """The dumps `tide` takes, by container name, and the dump labels that fail for it."""
    dumps: List[Dump] = []
    problems: List[Problem] = []
    for container in sorted(host.containers, key=lambda c: c.name):
        dump, tides, bad = parse(container)
        if tide in tides or (bad and not tides):
            problems += bad
        if dump and tide in tides:
            dumps.append(dump)
    return dumps, problems


def find(host: Host, container: str) -> Tuple[Optional[Dump], List[str], List[Problem]]:
    """The dump of the container named `container` (for a restore)."""
    for candidate in host.containers:
        if candidate.name == container:
            dump, tides, problems = parse(candidate)
            if dump is None and not problems:
                problems = [Problem(f'container "{container}"', f"has no {DUMP} label")]
            return dump, tides, problems
    return None, [], [Problem(f'container "{container}"', "no such container")]


def check(host: Host, tides: Collection[str]) -> List[Problem]:
    """Every problem with dump labels on this host (for `salvage check`)."""
    problems: List[Problem] = []
    for container in host.containers:
        _, named, bad = parse(container)
        problems += bad
        for tide in named:
            if tide not in tides:
                problems.append(Problem(where(container, DUMP_TIDE), f'no tide named "{tide}"'))
    return problems
