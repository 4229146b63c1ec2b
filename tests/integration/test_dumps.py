"""Databases dumped while they run (salvage.dump), on the real engine with real servers:
PostgreSQL 15 and MariaDB 10.11 from Debian 12's packages. Rows written, dumped with a
writer inserting meanwhile, the database dropped, the dump replayed, rows compared; the
database container never stops (no die event), and its password is on no command line."""

from __future__ import annotations

import json
import os
import time

import pytest
from support.databases import MARIADB, POSTGRES, image
from support.debian import RESTIC_CRANE, crane_image, use_reference_cranes
from support.harness import TAR_CRANE, events

pytestmark = pytest.mark.boundary  # docs/testing.md: run again on the distribution's libraries

PASSWORD = "Pw-3f9a-not-on-any-cmdline"


def _exec(api, container, script, env=None, check=True) -> str:
    made = api.exec_create(container, ["sh", "-c", script], environment=env or {})
    out = api.exec_start(made["Id"]).decode()
    code = api.exec_inspect(made["Id"])["ExitCode"]
    if check:
        assert code == 0, out
    return out


def _background(api, container, script, env=None) -> str:
    made = api.exec_create(container, ["sh", "-c", script], environment=env or {})
    api.exec_start(made["Id"], detach=True)
    return made["Id"]


def _until(condition, what: str, timeout: float = 120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


def _stopped(api, container, since) -> list:
    """Docker's events of the container since then that stop, pause or restart it."""
    down = ("die", "stop", "kill", "pause", "restart", "oom")
    return [a for n, a, _ in events(api, since) if n == container and a in down]


def _ended(api, exec_id) -> bool:
    return not api.exec_inspect(exec_id)["Running"]


class Postgres:
    image, kind, data = POSTGRES, "postgres", "/var/lib/postgresql/data"
    env = {"POSTGRES_PASSWORD": PASSWORD}
    client_env = {"PGUSER": "postgres", "PGPASSWORD": PASSWORD}
    dumper = "pg_dumpall"

    @staticmethod
    def sql(db: str, statement: str) -> str:
        return f'psql -X -q -t -A -v ON_ERROR_STOP=1 -d {db} -c "{statement}"'

    ready = "psql -X -d postgres -c 'select 1'"
    create = "create database shop"
    drop = "drop database shop"
    table = "create table items (id int primary key, name text); create table log (n serial)"
    fill = "insert into items select g, md5(g::text) from generate_series(1, 500) g"
    digest = "select count(*) || ':' || md5(string_agg(id || name, ',' order by id)) from items"
    hold = "select pg_sleep(3600)"


class MariaDB:
    image, kind, data = MARIADB, "mariadb", "/var/lib/mysql"
    env = {"MARIADB_ROOT_PASSWORD": PASSWORD}
    client_env = {"MYSQL_PWD": PASSWORD}
    dumper = "mariadb-dump"

    @staticmethod
    def sql(db: str, statement: str) -> str:
        return f'mariadb -uroot -N -B {db} -e "{statement}"'

    ready = "mariadb -uroot -e 'select 1'"
    create = "create database shop"
    drop = "drop database shop"
    table = (
        "create table items (id int primary key, name text) engine=InnoDB;"
        " create table log (n int auto_increment primary key) engine=InnoDB"
    )
    fill = "insert into items select seq, md5(seq) from seq_1_to_500"  # the Sequence engine
    digest = (
        "select concat(count(*), ':', md5(group_concat(id, name order by id separator ',')))"
        " from items"
    )
    hold = "select sleep(3600)"


@pytest.mark.parametrize("db", [Postgres, MariaDB], ids=["postgres15", "mariadb1011"])
def test_dump_while_running_round_trip(api, docker_host, stack, salvage, db):
    """Backed up with salvage.dump while a writer inserts; replayed after a drop; rows equal;
    the database never stops; the password is in no process's command line."""
    name = image(docker_host, db.image)
    volume = stack.volume("data")
    container = f"{stack.prefix}-db"
    created = api.create_container(
        name,
        name=container,
        environment=db.env,
        labels={"salvage.dump": db.kind, "salvage.dump.tide": stack.tide},
        host_config=api.create_host_config(binds=[f"{volume}:{db.data}"], network_mode="none"),
    )
    stack.containers.append(container)
    api.start(created["Id"])
    ce = db.client_env
    _until(
        lambda: (
            "1"
            in _try(
                api, container, db.sql("mysql" if db is MariaDB else "postgres", "select 1"), ce
            )
        ),
        "the server",
    )
    _exec(api, container, db.sql("mysql" if db is MariaDB else "postgres", db.create), ce)
    _exec(api, container, db.sql("shop", db.table), ce)
    _exec(api, container, db.sql("shop", db.fill), ce)
    before = _exec(api, container, db.sql("shop", db.digest), ce).strip()
    assert before.startswith("500:")

    salvage.use_tar()
    plan = salvage("plan", check_code=0).stdout
    assert f"dump {container}.dump" in plan and volume in plan, plan
    since = time.time()
    insert = db.sql("shop", "insert into log values (default)")
    writer = _background(api, container, f"while [ ! -f /tmp/stop-writer ]; do {insert}; done", ce)
    count = db.sql("shop", "select count(*) from log")
    _until(lambda: int(_try(api, container, count, ce) or 0) > 5, "the writer's first rows")
    written_before = int(_exec(api, container, count, ce))
    # Every process's command line in the container, sampled while the dump runs.
    sampler = _background(
        api,
        container,
        "while [ ! -f /tmp/stop-sampler ]; do"
        " for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < $f; echo; done"
        " >> /tmp/cmdlines 2>/dev/null; done",
    )
    done = salvage("run", "--tide", stack.tide)
    _exec(api, container, "touch /tmp/stop-sampler /tmp/stop-writer")
    _until(lambda: _ended(api, writer) and _ended(api, sampler), "the writer and the sampler")
    assert done.returncode == 0, done.stderr
    written_after = int(_exec(api, container, count, ce))
    assert written_after > written_before  # the writer went on during the run
    assert f"dump {container}.dump: taken" in done.stderr, done.stderr

    dumps = list((salvage.backups / "testhost" / f"{container}.dump").glob("*.dump.gz"))
    assert len(dumps) == 1, dumps
    cmdlines = _exec(api, container, "cat /tmp/cmdlines")
    assert db.dumper in cmdlines  # sampled while the dump ran
    assert PASSWORD not in cmdlines

    # A connection holding the database: the replay's first error stops it; one line, exit 1.
    if db is Postgres:
        holder = _background(api, container, db.sql("shop", db.hold), ce)
        _until(
            lambda: (
                "1"
                in _try(
                    api,
                    container,
                    db.sql(
                        "postgres",
                        "select count(*) from pg_stat_activity where datname = 'shop'"
                        " and query like '%pg_sleep%'",
                    ),
                    ce,
                )
            ),
            "the holding connection",
        )
        failed = salvage("restore", "--dump", container, "--yes")
        assert failed.returncode == 1, failed.stderr
        lines = [line for line in failed.stderr.splitlines() if line.startswith("error")]
        assert len(lines) == 1 and "replay" in lines[0] and "being accessed" in lines[0], lines
        assert "Traceback" not in failed.stderr
        _exec(
            api,
            container,
            db.sql(
                "postgres",
                "select pg_terminate_backend(pid) from"
                " pg_stat_activity where query like '%pg_sleep(3600)%'"
                " and pid <> pg_backend_pid()",
            ),
            ce,
        )
        _until(lambda: _ended(api, holder), "the holding connection's end")

    _exec(api, container, db.sql("mysql" if db is MariaDB else "postgres", db.drop), ce)
    assert "shop" not in _exec(
        api,
        container,
        db.sql(
            "mysql" if db is MariaDB else "postgres",
            "show databases" if db is MariaDB else "select datname from pg_database",
        ),
        ce,
    )
    unconfirmed = salvage("restore", "--dump", container)
    assert unconfirmed.returncode == 2 and "--yes" in unconfirmed.stderr
    restored = salvage("restore", "--dump", container, "--yes")
    assert restored.returncode == 0, restored.stderr
    assert _exec(api, container, db.sql("shop", db.digest), ce).strip() == before
    logged = int(_exec(api, container, count, ce))
    assert written_before <= logged <= written_after  # a consistent point in between

    # The database ran throughout: Docker saw it neither die, stop, pause nor restart.
    assert not _stopped(api, container, since)
    assert stack.state(container) == "running"


def _try(api, container, script, env) -> str:
    made = api.exec_create(container, ["sh", "-c", script], environment=env)
    out = api.exec_start(made["Id"]).decode()
    return out.strip() if api.exec_inspect(made["Id"])["ExitCode"] == 0 else ""


RESTIC = RESTIC_CRANE
CUSTOM = "cat /data/db.bin"  # a database of one file, for the crane round trips
CUSTOM_RESTORE = "cat > /data/db.bin.new && mv /data/db.bin.new /data/db.bin"


@pytest.fixture(scope="session")
def restic_crane(docker_host, images):
    return crane_image(docker_host, "restic", RESTIC)


def _use(salvage, crane: str, tmp_path) -> None:
    use_reference_cranes(salvage, crane, tmp_path, salvage.state, TAR_CRANE)


def _custom(stack, command: str = CUSTOM, restore: str = CUSTOM_RESTORE) -> str:
    volume = stack.volume("data")
    return stack.container(
        "db",
        [volume],
        labels={
            "salvage.dump": "custom",
            "salvage.dump.tide": stack.tide,
            "salvage.dump.command": command,
            "salvage.dump.restore": restore,
        },
    )


@pytest.mark.parametrize("crane", ["tar", "restic"])
def test_custom_dump_round_trip_through_each_crane(
    api, stack, salvage, restic_crane, tmp_path, crane
):
    """salvage.dump.command / .restore: 3 MB of binary through the crane's stdin and back;
    the dump is a backup like a volume's: snapshots, history."""
    container = _custom(stack)
    digest = "sha256sum /data/db.bin"
    _exec(api, container, "head -c 3000000 /dev/urandom > /data/db.bin")
    before = _exec(api, container, digest)
    _use(salvage, crane, tmp_path)
    since = time.time()
    done = salvage("run", "--tide", stack.tide)
    assert done.returncode == 0, done.stderr
    assert f"dump {container}.dump: taken" in done.stderr, done.stderr
    assert ("wrote" if crane == "tar" else "saved:") in done.stderr  # the crane's own log
    listed = salvage("snapshots", f"{container}.dump", "--json", check_code=0).stdout
    assert len(json.loads(listed)) == 1, listed
    assert f"{container}.dump" in salvage("history", check_code=0).stdout
    for how in ((), ("--restore",)):  # a dump is checked as an archive, never into a volume
        verified = salvage("verify", "--tide", stack.tide, *how)
        assert verified.returncode == 0 and f"{container}.dump" in verified.stderr, verified.stderr
    _exec(api, container, "echo overwritten > /data/db.bin")
    restored = salvage("restore", "--dump", container, "--yes")
    assert restored.returncode == 0, restored.stderr
    assert _exec(api, container, digest) == before
    assert not _stopped(api, container, since)


def test_failed_dump_stores_nothing_and_says_why_in_one_line(api, stack, salvage):
    """A dump that exits non-zero after writing part of its output: its crane is killed
    before its input ends, so no snapshot exists; one line says why; the database runs on."""
    container = _custom(stack, "printf partial; echo 'pg_dumpall: error: query failed' >&2; exit 3")
    salvage.use_tar()
    since = time.time()
    done = salvage("run", "--tide", stack.tide)
    assert done.returncode == 1, done.stderr
    errors = [line for line in done.stderr.splitlines() if "failed:" in line]
    assert errors == [
        f"error: dump {container}.dump: failed: the dump exited with 3:"
        " pg_dumpall: error: query failed"
    ], done.stderr
    assert not list(salvage.backups.rglob("*.dump.gz"))
    none = salvage("restore", "--dump", container, "--yes")
    assert none.returncode == 1 and "no snapshot" in none.stderr, none.stderr
    assert stack.state(container) == "running"
    assert not _stopped(api, container, since)


def test_a_crane_that_does_not_read_the_stream_fails_the_dump(stack, salvage):
    """A crane that ignores SALVAGE_SOURCE=stdin and exits 0 has saved nothing of the dump:
    the dump fails in one line, rather than count as backed up."""
    container = _custom(stack, "head -c 50000000 /dev/zero")
    salvage.use_script("exit 0")
    done = salvage("run", "--tide", stack.tide)
    assert done.returncode == 1, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error")]
    assert errors == [
        f'error: dump {container}.dump: failed: crane "script" stopped reading the dump'
        " (exit 0; does it take SALVAGE_SOURCE=stdin?)"
    ], done.stderr
    assert stack.state(container) == "running"


@pytest.mark.parametrize("crane", ["tar", "restic"])
def test_salvage_killed_mid_dump_keeps_no_snapshot(
    api, stack, salvage, restic_crane, tmp_path, crane
):
    """SIGKILL of salvage while a dump streams: the engine ends the crane's input, which
    must not pass for the dump's end. The crane keeps nothing; after `recover` there is no
    snapshot of the dump to restore, and the database ran throughout."""
    from support.background import Background

    container = _custom(stack, "head -c 2000000 /dev/urandom; sleep 120")
    _use(salvage, crane, tmp_path)
    since = time.time()
    run = Background(salvage, "run", "--tide", stack.tide)
    label = {"label": f"salvage.crane.volume={container}.dump"}

    def states() -> list:
        return [c["State"] for c in api.containers(all=True, filters=label)]

    _until(lambda: "running" in states(), "the dump's crane to run")
    if crane == "tar":  # its first compressed bytes are on disk: the stream flows
        _until(
            lambda: [p for p in salvage.backups.rglob(".*.partial") if p.stat().st_size],
            "the crane's first bytes",
        )
    else:  # restic has taken its lock on the repository: the backup reads its input
        _until(lambda: list(salvage.backups.rglob("locks/*")), "restic's lock")
    os.kill(run.pid, 9)
    run.wait()
    _until(lambda: all(state == "exited" for state in states()), "the crane to end")
    assert salvage("recover").returncode == 0
    listed = salvage("snapshots", f"{container}.dump", "--json")
    assert listed.returncode != 0 or json.loads(listed.stdout) == [], listed.stdout
    assert not list(salvage.backups.rglob("*.dump.gz"))
    assert stack.state(container) == "running"
    assert not _stopped(api, container, since)
