"""The record of every run, in SQLite: `history.sqlite` in the state directory.

The Recorder observer writes it as a run goes (the run when it starts, each volume when
its group is done, the result at the end), so a run that dies leaves what it did.
`status`, `history` and the metrics read it.

The schema only moves forward: MIGRATIONS[n] takes a database from version n to n + 1
(SQLite's user_version), so a database written by any earlier salvage is brought up to
date when it is opened.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
from contextlib import closing, contextmanager
from typing import Any, Iterator, List, Optional, Sequence

from salvage.core.results import TideResult, VolumeResult
from salvage.errors import SalvageError
from salvage.report.observers import Observer

log = logging.getLogger("salvage")

FILE = "history.sqlite"
# Members of this group (the packages create it) may read the history: `status`, `history`.
GROUP = "salvage"
FINISHED = ("success", "failure")  # a run is also "running", or "unfinished" if it died

MIGRATIONS = (
    (  # 1: runs and their volumes
        """CREATE TABLE runs (
            run_id TEXT PRIMARY KEY,
            tide TEXT NOT NULL,
            machine TEXT NOT NULL,
            trigger TEXT NOT NULL,
            started REAL NOT NULL,
            ended REAL,
            result TEXT NOT NULL,
            exit_code INTEGER,
            downtime REAL NOT NULL DEFAULT 0,
            interrupted TEXT,
            problems TEXT NOT NULL DEFAULT '[]'
        )""",
        "CREATE INDEX runs_by_tide ON runs (tide, started)",
        """CREATE TABLE volumes (
            run_id TEXT NOT NULL REFERENCES runs (run_id),
            tide TEXT NOT NULL,
            volume TEXT NOT NULL,
            grp TEXT NOT NULL,
            crane TEXT NOT NULL,
            ok INTEGER NOT NULL,
            started REAL,
            ended REAL NOT NULL,
            seconds REAL NOT NULL,
            downtime REAL NOT NULL,
            exit_code INTEGER,
            error TEXT NOT NULL DEFAULT '',
            size INTEGER,
            PRIMARY KEY (run_id, volume)
        )""",
        "CREATE INDEX volumes_by_name ON volumes (tide, volume, ok, ended)",
    ),
    (  # 2: what the crane reported it stored (size is bytes stored), a shrink warning
        "ALTER TABLE volumes ADD COLUMN bytes_read INTEGER",
        "ALTER TABLE volumes ADD COLUMN files INTEGER",
        "ALTER TABLE volumes ADD COLUMN snapshot TEXT",
        "ALTER TABLE volumes ADD COLUMN shrunk TEXT",
    ),
    (  # 3: `salvage verify` results
        """CREATE TABLE verifies (
            tide TEXT NOT NULL,
            volume TEXT NOT NULL,
            started REAL NOT NULL,
            ended REAL NOT NULL,
            ok INTEGER NOT NULL,
            restore INTEGER NOT NULL,
            error TEXT NOT NULL DEFAULT ''
        )""",
        "CREATE INDEX verifies_by_volume ON verifies (tide, volume, ended)",
    ),
)


class HistoryError(SalvageError):
    """The history cannot be read or written; said in one line."""


def _denied(path: str) -> str:
    return (
        f"{path}: permission denied: the run history is readable by root and the group"
        f" {GROUP}: run this with sudo, or join the group (sudo usermod -aG {GROUP} $USER,"
        " then log in again)"
    )


def _share(path: str) -> None:
    """A new history file: readable by the group salvage, where there is one. Under the
    units (no capabilities) the chown fails: the packages make the file beforehand."""
    import grp

    try:
        os.chown(path, -1, grp.getgrnam(GROUP).gr_gid)
        os.chmod(path, 0o640)
    except (KeyError, OSError):
        pass


class History:
    def __init__(self, state_directory: str) -> None:
        self.path = os.path.join(state_directory, FILE)

    @contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        """A connection for writing: the database is made when missing, so never None."""
        with self._connect(write=True) as conn:
            assert conn is not None
            yield conn

    @contextmanager
    def _connect(self, write: bool = False) -> Iterator[Optional[sqlite3.Connection]]:
        """A connection to an up-to-date database; None when reading one that does not
        exist yet (nothing was ever recorded)."""
        new = False
        if not write:
            try:
                os.stat(self.path)
                if not os.access(self.path, os.R_OK):
                    raise PermissionError
            except FileNotFoundError:
                yield None
                return
            except PermissionError:
                raise HistoryError(_denied(self.path)) from None
        try:
            if write:
                os.makedirs(os.path.dirname(self.path), mode=0o711, exist_ok=True)
                new = not os.path.exists(self.path)
            # Autocommit: each write is a statement of its own, migrations are explicit.
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        except (OSError, sqlite3.Error) as error:
            raise HistoryError(f"{self.path}: {error}") from error
        if new:
            _share(self.path)
        with closing(conn):
            try:
                conn.row_factory = sqlite3.Row
                if not write and self._version(conn) == 0:
                    yield None  # an empty file (the packages make one): nothing recorded
                    return
                self._migrate(conn)
                yield conn
            except sqlite3.Error as error:
                raise HistoryError(f"{self.path}: {error}") from error

    def _migrate(self, conn: sqlite3.Connection) -> None:
        if self._version(conn) == len(MIGRATIONS):
            return
        conn.execute("BEGIN IMMEDIATE")  # one process migrates; the others wait, then see it
        try:
            version = self._version(conn)
            for number, steps in enumerate(MIGRATIONS[version:], version + 1):
                for statement in steps:
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {number}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _version(self, conn: sqlite3.Connection) -> int:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            raise HistoryError(
                f"{self.path}: written by a newer salvage (schema {version}; this one knows"
                f" {len(MIGRATIONS)})"
            )
        return version

    # --- writing ---------------------------------------------------------------------------

    def run_started(self, result: TideResult, machine: str) -> None:
        with self._writing() as conn:
            # Another run of this tide still "running" died with its process.
            conn.execute(
                "UPDATE runs SET result = 'unfinished' WHERE tide = ? AND result = 'running'",
                (result.tide,),
            )
            conn.execute(
                "INSERT INTO runs (run_id, tide, machine, trigger, started, result)"
                " VALUES (?, ?, ?, ?, ?, 'running')",
                (result.run_id, result.tide, machine, result.trigger, result.started),
            )

    def volume_done(self, run_id: str, tide: str, volume: VolumeResult) -> None:
        with self._writing() as conn:
            self._volume(conn, run_id, tide, volume)

    def run_done(self, result: TideResult) -> None:
        with self._writing() as conn:
            conn.execute("BEGIN")
            for volume in result.volumes:  # also those failed without a crane
                self._volume(conn, result.run_id, result.tide, volume)
            problems = [str(p) for p in result.problems + result.errors]
            conn.execute(
                "UPDATE runs SET ended = ?, result = ?, exit_code = ?, downtime = ?,"
                " interrupted = ?, problems = ? WHERE run_id = ?",
                (
                    result.ended,
                    "success" if result.ok else "failure",
                    result.exit_code,
                    result.downtime,
                    result.interrupted,
                    json.dumps(problems),
                    result.run_id,
                ),
            )
            conn.execute("COMMIT")

    @staticmethod
    def _volume(conn: sqlite3.Connection, run_id: str, tide: str, v: VolumeResult) -> None:
        ended = v.started + v.seconds if v.started else time.time()
        conn.execute(
            "INSERT OR REPLACE INTO volumes (run_id, tide, volume, grp, crane, ok, started,"
            " ended, seconds, downtime, exit_code, error, size, bytes_read, files, snapshot,"
            " shrunk) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                run_id,
                tide,
                v.volume,
                v.group,
                v.crane,
                int(v.ok),
                v.started or None,
                ended,
                v.seconds,
                v.downtime,
                v.exit_code,
                v.message,
                v.size,
                v.bytes_read,
                v.files,
                v.snapshot,
                v.shrunk,
            ),
        )

    def verify_done(
        self, tide: str, volume: str, started: float, ok: bool, restore: bool, error: str = ""
    ) -> None:
        with self._writing() as conn:
            conn.execute(
                "INSERT INTO verifies (tide, volume, started, ended, ok, restore, error)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (tide, volume, started, time.time(), int(ok), int(restore), error),
            )

    # --- reading ---------------------------------------------------------------------------

    def last_verify(self, tide: str, volume: str) -> Optional[dict]:
        """The volume's newest `salvage verify` result in this tide, or None."""
        with self._connect() as conn:
            if conn is None:
                return None
            row = conn.execute(
                "SELECT * FROM verifies WHERE tide = ? AND volume = ? ORDER BY ended DESC LIMIT 1",
                (tide, volume),
            ).fetchone()
        if row is None:
            return None
        found = dict(row)
        found["ok"], found["restore"] = bool(found["ok"]), bool(found["restore"])
        return found

    def runs(
        self, tides: Sequence[str] = (), volumes: Sequence[str] = (), limit: int = 20
    ) -> List[dict]:
        """The newest runs first, each with its volumes (only `volumes`, when given)."""
        where: List[str] = []
        args: List[Any] = []
        if tides:
            where.append(f"tide IN ({_marks(tides)})")
            args += tides
        if volumes:
            where.append(
                f"run_id IN (SELECT run_id FROM volumes WHERE volume IN ({_marks(volumes)}))"
            )
            args += volumes
        sql = "SELECT * FROM runs" + (" WHERE " + " AND ".join(where) if where else "")
        with self._connect() as conn:
            if conn is None:
                return []
            runs = [
                _run(row)
                for row in conn.execute(f"{sql} ORDER BY started DESC LIMIT ?", (*args, limit))
            ]
            for run in runs:
                rows = conn.execute(
                    "SELECT * FROM volumes WHERE run_id = ? ORDER BY ended", (run["run_id"],)
                )
                run["volumes"] = [
                    _volume(row) for row in rows if not volumes or row["volume"] in volumes
                ]
        return runs

    def last_run(self, tide: str, finished: bool = False) -> Optional[dict]:
        """The tide's newest run; with `finished`, the newest that ran to its end."""
        only = f" AND result IN ({_marks(FINISHED)})" if finished else ""
        with self._connect() as conn:
            if conn is None:
                return None
            row = conn.execute(
                f"SELECT * FROM runs WHERE tide = ?{only} ORDER BY started DESC LIMIT 1",
                (tide, *FINISHED) if finished else (tide,),
            ).fetchone()
        return _run(row) if row else None

    def last_success(self, tide: str) -> Optional[float]:
        """When the tide's newest run that backed up all of its volumes ended."""
        with self._connect() as conn:
            if conn is None:
                return None
            row = conn.execute(
                "SELECT max(ended) FROM runs WHERE tide = ? AND result = 'success'", (tide,)
            ).fetchone()
        return row[0]

    def last_good(self, tide: str, volume: str) -> Optional[dict]:
        """The volume's newest successful backup in this tide, or None."""
        with self._connect() as conn:
            if conn is None:
                return None
            row = conn.execute(
                "SELECT * FROM volumes WHERE tide = ? AND volume = ? AND ok = 1"
                " ORDER BY ended DESC LIMIT 1",
                (tide, volume),
            ).fetchone()
        return _volume(row) if row else None

    def volumes(self, tide: str) -> List[dict]:
        """The tide's volumes as of its newest finished run that had any, each with its
        `last` backup and its `last_success` (None if it never succeeded)."""
        with self._connect() as conn:
            if conn is None:
                return []
            latest = conn.execute(
                "SELECT run_id FROM volumes JOIN runs USING (run_id) WHERE runs.tide = ?"
                f" AND result IN ({_marks(FINISHED)}) ORDER BY runs.started DESC LIMIT 1",
                (tide, *FINISHED),
            ).fetchone()
            if latest is None:
                return []
            found = []
            for row in conn.execute(
                "SELECT * FROM volumes WHERE run_id = ? ORDER BY volume", (latest[0],)
            ).fetchall():
                success = conn.execute(
                    "SELECT * FROM volumes WHERE tide = ? AND volume = ? AND ok = 1"
                    " ORDER BY ended DESC LIMIT 1",
                    (tide, row["volume"]),
                ).fetchone()
                found.append(
                    {
                        "volume": row["volume"],
                        "last": _volume(row),
                        "last_success": _volume(success) if success else None,
                    }
                )
        return found


def _marks(values: Sequence[str]) -> str:
    return ", ".join("?" * len(values))


def _run(row: sqlite3.Row) -> dict:
    run = dict(row)
    run["problems"] = json.loads(run["problems"])
    run["seconds"] = run["ended"] - run["started"] if run["ended"] else None
    return run


def _volume(row: sqlite3.Row) -> dict:
    volume = dict(row)
    volume["group"] = volume.pop("grp")
    volume["ok"] = bool(volume["ok"])
    return volume


class Recorder(Observer):
    """Writes each run into the history. If the history cannot be written, says so once
    and lets the run go on."""

    def __init__(self, config) -> None:
        self.history = History(config.state_directory)
        self.machine = config.machine
        self.broken = False

    def _record(self, write, *args) -> None:
        if self.broken:
            return
        try:
            write(*args)
        except HistoryError as error:
            self.broken = True
            log.warning("history: this run is not recorded: %s", error)

    def tide_started(self, run, plan) -> None:
        self.broken = False
        self._record(self.history.run_started, run.result, self.machine)

    def volume_done(self, run, result: VolumeResult) -> None:
        self._record(self.history.volume_done, run.run_id, run.tide.name, result)

    def tide_done(self, run, result: TideResult) -> None:
        self._record(self.history.run_done, result)
