"""Disaster recovery with real engines and real restic: two hosts (two private dockerds)
back up at once into one repository on a shared directory; host A is then wiped and a
third engine, the new machine, gets A's volumes back with `salvage restore --machine
host-a --all` (once killed halfway and run again) and brings A's compose project up on them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import docker
import pytest
from support.debian import RESTIC_CRANE, crane_image
from support.dockerd import PrivateDockerd
from support.harness import BUSYBOX, TAR_CRANE, build_images
from support.scene import wait_for

RESTIC = RESTIC_CRANE
PASSWORD = "correct horse battery staple"
VOLUMES = ["shop_db", "shop_files"]
# Every path's type, size, mode, owner and modification time, and every file's checksum.
MANIFEST = (
    "cd /v && find . -exec stat -c '%n|%F|%s|%a|%u|%g|%Y' {} + | sort"
    " && find . -type f -exec sha256sum {} + | sort"
)
COMPOSE = f"""
version: "2.4"
services:
  db:
    image: {BUSYBOX}
    init: true
    network_mode: none
    command: sleep 3600
    volumes: [db:/data]
    labels: {{salvage.tide.nightly: db}}
  files:
    image: {BUSYBOX}
    init: true
    network_mode: none
    command: sleep 3600
    volumes: [files:/srv]
    labels: {{salvage.tide.nightly: files}}
volumes:
  db:
  files:
"""


class Host:
    """One machine: an engine, salvage's configuration and state, the compose project."""

    def __init__(self, engine: PrivateDockerd, name: str, tmp: Path, keep: str = "") -> None:
        self.engine, self.name = engine, name
        self.api = docker.APIClient(base_url=engine.host, version="auto", timeout=120)
        self.dir = tmp / name
        self.dir.mkdir()
        (self.dir / "docker-compose.yml").write_text(COMPOSE)
        password = tmp / "restic-password"
        if not password.exists():
            password.write_text(PASSWORD)
            password.chmod(0o600)
        keep = f', RESTIC_KEEP_LAST = "{keep}"' if keep else ""
        self.config = self.dir / "salvage.toml"
        self.config.write_text(
            textwrap.dedent(f"""
            machine = "{name}"
            state_directory = "{self.dir / "state"}"
            [tides.nightly]
            crane = "restic"
            [cranes.restic]
            image = "{RESTIC}"
            pull = "never"
            mounts = {{ "{tmp / "repo"}" = "/salvage/target" }}
            secrets = {{ RESTIC_PASSWORD = "{password}" }}
            env = {{ RESTIC_REPOSITORY = "/salvage/target/shared"{keep} }}
            """)
        )
        self.config.chmod(0o600)

    @property
    def env(self) -> dict:
        env = dict(os.environ, DOCKER_HOST=self.engine.host)
        env.pop("SALVAGE_CONFIG", None)
        return env

    def command(self, *args: str) -> list:
        return [sys.executable, "-m", "salvage", "-c", str(self.config), *args]

    def start(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen(
            self.command(*args),
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def salvage(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            self.command(*args), env=self.env, capture_output=True, text=True, timeout=600
        )

    def compose(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["docker-compose", "-p", "shop", *args],
            cwd=self.dir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )

    def box(self, volume: str, command: str, read_only: bool = False) -> str:
        bind = f"{volume}:/v{':ro' if read_only else ''}"
        created = self.api.create_container(
            BUSYBOX,
            ["sh", "-c", command],
            host_config=self.api.create_host_config(binds=[bind], network_mode="none"),
        )
        try:
            self.api.start(created)
            code = self.api.wait(created, timeout=120)["StatusCode"]
            output = self.api.logs(created).decode()
            assert code == 0, output
            return output
        finally:
            self.api.remove_container(created, force=True)

    def manifests(self) -> dict:
        return {v: self.box(v, MANIFEST, read_only=True) for v in VOLUMES}

    def restic(self, *args: str) -> subprocess.CompletedProcess:
        """restic itself on the shared repository, as a user would check it."""
        tmp = self.dir.parent
        return subprocess.run(
            [
                "docker",
                "run",
                "--rm",
                "--network",
                "none",
                "-v",
                f"{tmp / 'repo'}:/t",
                "-v",
                f"{tmp / 'restic-password'}:/pw:ro",
                "-e",
                "RESTIC_PASSWORD_FILE=/pw",
                "-e",
                "RESTIC_REPOSITORY=/t/shared",
                "--entrypoint",
                "restic",
                RESTIC,
                *args,
            ],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )


def _prepare(engine: PrivateDockerd, busybox: bool = True) -> None:
    if busybox:
        build_images(engine.host)
    crane_image(engine.host, "restic", RESTIC)


def _engine(name: str) -> PrivateDockerd:
    engine = PrivateDockerd(prefix=f"salvage-{name}-", bridge=f"slv{name}{os.getpid() % 10000}")
    try:
        engine.start()
    except RuntimeError as error:
        pytest.fail(str(error))
    _prepare(engine)
    return engine


def _fill(host: Host, volume: str, seed: str) -> None:
    """Files of every kind a restore must give back: modes, owners, links, empty ones."""
    host.box(
        volume,
        (
            f"mkdir -p /v/dir/sub /v/empty-dir && echo {seed} > /v/dir/sub/text"
            f" && head -c 65536 /dev/urandom > /v/random && chmod 0640 /v/random"
            " && chown 1000:1000 /v/dir/sub/text && : > /v/empty-file"
            " && ln -s dir/sub/text /v/link && ln /v/random /v/hardlink"
        ),
    )


def _volume_of(snapshot: dict) -> str:
    return next(t[len("volume=") :] for t in snapshot["tags"] if t.startswith("volume="))


def _row(outcomes: str, volume: str) -> str:
    return next(line for line in outcomes.splitlines() if line.startswith(volume + " "))


def _result(outcomes: str, volume: str) -> str:
    """The RESULT column of the volume's row in the summary table."""
    column = next(line for line in outcomes.splitlines() if line.startswith("VOLUME "))
    return _row(outcomes, volume)[column.index("RESULT") :]


def test_whole_host_back_on_a_new_machine(fault_engine, tmp_path, table):
    _prepare(fault_engine, busybox=False)
    engine_a = _engine("a")
    a, b = Host(engine_a, "host-a", tmp_path, keep="1"), Host(fault_engine, "host-b", tmp_path)
    engine_c = None
    try:
        for host in (a, b):
            done = host.compose("up", "-d")
            assert done.returncode == 0, done.stderr
            for volume in VOLUMES:
                _fill(host, volume, f"{host.name}-{volume}")
        codes = []
        for round in range(3):
            for host in (a, b):
                for volume in VOLUMES:
                    host.box(volume, f"echo {round} >> /v/dir/rounds")
            runs = [h.start("run") for h in (a, b)]
            for run in runs:
                _, stderr = run.communicate(timeout=600)
                codes.append(run.returncode)
                assert run.returncode == 0, stderr
        keys = len(list((tmp_path / "repo" / "shared" / "keys").iterdir()))  # one init won
        check = b.restic("check")
        found = json.loads(b.restic("snapshots", "--json").stdout)
        per_host = {
            h: sorted(_volume_of(s) for s in found if s["hostname"] == h)
            for h in ("host-a", "host-b")
        }
        each = {h: {v: per_host[h].count(v) for v in VOLUMES} for h in per_host}
        table(
            "two hosts back up at once into one restic repository, 3 times (A keeps the last 1)",
            "exit 0 0 0 0 0 0; 1 key; restic check ok; snapshots of host-a: shop_db 1,"
            " shop_files 1;"
            " of host-b: shop_db 3, shop_files 3",
            f"exit {' '.join(map(str, codes))}; {keys} key{'s' * (keys != 1)};"
            f" restic check {'ok' if check.returncode == 0 else 'FAILED: ' + check.stderr};"
            + ";".join(
                f" {'snapshots ' if h == 'host-a' else ''}of {h}: "
                + ", ".join(f"{v} {n}" for v, n in each[h].items())
                for h in each
            ),
        )
        assert sorted(per_host["host-a"] + per_host["host-b"]) == sorted(
            _volume_of(s) for s in found
        )  # no snapshot of another host
        # Another machine sees A's volumes and snapshots.
        listed = b.salvage("snapshots", "--machine", "host-a")
        assert listed.returncode == 0, listed.stderr
        assert [line.split()[0] for line in listed.stdout.splitlines()[1:]] == VOLUMES
        own = b.salvage("snapshots", "--machine", "host-a", "shop_db")
        newest_a = next(
            s["short_id"] for s in found if s["hostname"] == "host-a" and _volume_of(s) == "shop_db"
        )
        assert own.stdout.split()[0] == newest_a, own.stdout

        before = a.manifests()
        done = a.compose("down", "-v")  # host A is gone: its containers and volumes
        assert done.returncode == 0, done.stderr
        assert not [v for v in a.api.volumes()["Volumes"] or [] if v["Name"] in VOLUMES]
        engine_a.remove()  # and its engine, so that no more than two run at once

        engine_c = _engine("c")
        c = Host(engine_c, "host-c", tmp_path)
        dry = c.salvage("restore", "--machine", "host-a", "--all", "--dry-run")
        created = [v["Name"] for v in c.api.volumes()["Volumes"] or []]
        table(
            "restore --machine host-a --all --dry-run on the new machine",
            "exit 0; shop_db, shop_files: would be created with their compose labels;"
            " no volume created",
            f"exit {dry.returncode}; "
            + ", ".join(
                v
                for v in VOLUMES
                if "would be created: driver local, options none, labels" in _row(dry.stdout, v)
                and "com.docker.compose.project=shop" in _row(dry.stdout, v)
                and f"com.docker.compose.volume={v[5:]}," in _row(dry.stdout, v)
            )
            + ": would be created with their compose labels; "
            + (f"created {created}" if created else "no volume created"),
        )

        # Killed halfway: once the second volume has been created, before it is filled.
        killed = c.start("restore", "--machine", "host-a", "--all")
        names = lambda: [v["Name"] for v in c.api.volumes()["Volumes"] or []]  # noqa: E731
        wait_for(
            lambda: "shop_files" in names() or killed.poll() is not None,
            "the restore to create shop_files",
            timeout=300,
        )
        killed.send_signal(signal.SIGKILL)
        killed.communicate(timeout=60)
        first = c.api.inspect_volume("shop_db")["CreatedAt"]
        again = c.salvage("restore", "--machine", "host-a", "--all")
        table(
            "restore --machine host-a --all killed once shop_files exists, then run again",
            "exit 0; shop_db: already restored: left alone; shop_files: finished",
            f"exit {again.returncode}; shop_db: {_result(again.stdout, 'shop_db')};"
            f" shop_files: {_result(again.stdout, 'shop_files')}",
        )
        assert c.api.inspect_volume("shop_db")["CreatedAt"] == first

        up = c.compose("up", "-d")
        running = sorted(
            x["Labels"]["com.docker.compose.service"]
            for x in c.api.containers(filters={"label": "com.docker.compose.project=shop"})
        )
        after = c.manifests()
        table(
            "docker compose up on the new machine, on A's restored volumes",
            "exit 0; volumes adopted; db, files running; every manifest equals A's",
            f"exit {up.returncode}; "
            + ("volumes adopted" if "already exists" not in up.stderr else up.stderr.strip())
            + f"; {', '.join(running)} running; "
            + ("every manifest equals A's" if after == before else f"DIFFERENT: {after}"),
        )
    finally:
        b.compose("down", "-v", "-t", "1")
        for engine in (engine_a, engine_c):
            if engine and engine.base.exists():
                engine.remove()


def test_restore_all_refuses_a_volume_that_exists_unless_force(fault_engine, tmp_path, table):
    """The new machine already has a volume of that name (its own data): refused, and with
    --force restored over after a safety backup under the new machine's own name."""
    api = docker.APIClient(base_url=fault_engine.host, version="auto", timeout=120)
    env = dict(os.environ, DOCKER_HOST=fault_engine.host)
    env.pop("SALVAGE_CONFIG", None)
    prefix = "w" + uuid.uuid4().hex[:6]
    names = [f"{prefix}-one", f"{prefix}-two"]

    def config(machine: str) -> Path:
        path = tmp_path / f"{machine}.toml"
        path.write_text(
            textwrap.dedent(f"""
            machine = "{machine}"
            state_directory = "{tmp_path / machine}"
            [tides.t]
            crane = "tar"
            [cranes.tar]
            image = "{TAR_CRANE}"
            pull = "never"
            mounts = {{ "{tmp_path / "out"}" = "/salvage/target" }}
            """)
        )
        return path

    def salvage(machine: str, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "salvage", "-c", str(config(machine)), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )

    def box(volume: str, command: str) -> str:
        created = api.create_container(
            BUSYBOX,
            ["sh", "-c", command],
            host_config=api.create_host_config(binds=[f"{volume}:/v"]),
        )
        api.start(created)
        api.wait(created, timeout=120)
        output = api.logs(created).decode()
        api.remove_container(created, force=True)
        return output

    app = None
    try:
        for name in names:
            api.create_volume(name)
            box(name, f"echo {name} from old > /v/data")
        app = api.create_container(
            BUSYBOX,
            ["sleep", "3600"],
            labels={"salvage.tide.t": ",".join(names)},
            host_config=api.create_host_config(binds=[f"{n}:/{n}" for n in names], init=True),
        )
        api.start(app)
        saved = salvage("old", "run")
        assert saved.returncode == 0, saved.stderr
        api.remove_container(app, force=True)
        app = None
        for name in names:  # the old host is gone; the new one has a volume "two" of its own
            api.remove_volume(name)
        api.create_volume(names[1])
        box(names[1], "echo the new host data > /v/data")

        refused = salvage("new", "restore", "--machine", "old", "--all")
        kept = box(names[1], "cat /v/data").strip()
        forced = salvage("new", "restore", "--machine", "old", "--all", "--force")
        now = [box(n, "cat /v/data").strip() for n in names]
        safety = list((tmp_path / "out" / "new" / names[1]).glob("*.tar.gz"))
        table(
            "restore --all on a host that has a volume of that name, then with --force",
            f"exit 1; {names[0]}: restored; {names[1]}: exists: not touched (--force restores"
            " over it), its data kept; then exit 0; already restored: left alone; restored"
            " over after 1 safety backup under the new machine; data from the old host",
            f"exit {refused.returncode}; {names[0]}: {_result(refused.stdout, names[0])};"
            f" {names[1]}: {_result(refused.stdout, names[1])},"
            f" its data {'kept' if kept == 'the new host data' else kept};"
            f" then exit {forced.returncode}; {_result(forced.stdout, names[0])};"
            f" {_result(forced.stdout, names[1])} over after {len(safety)} safety backup under"
            " the new machine; "
            + ("data from the old host" if now == [f"{n} from old" for n in names] else str(now)),
        )
    finally:
        if app:
            api.remove_container(app, force=True)
        for name in names:
            try:
                api.remove_volume(name, force=True)
            except docker.errors.NotFound:
                pass
        api.close()


def test_hosts_racing_to_create_one_repository(fault_engine, tmp_path, table):
    """Four hosts' init at the same moment on a new repository, three times over: one
    repository, one key, every init exit 0 (the losers find the winner's)."""
    _prepare(fault_engine, busybox=False)
    api = docker.APIClient(base_url=fault_engine.host, version="auto", timeout=120)
    password = tmp_path / "restic-password"
    password.write_text(PASSWORD)
    found = []
    for attempt in range(3):
        target = tmp_path / f"repo{attempt}"
        target.mkdir()
        cranes = [
            api.create_container(
                RESTIC,
                environment={
                    "SALVAGE_ACTION": "init",
                    "SALVAGE_MACHINE_NAME": f"host{n}",
                    "RESTIC_REPOSITORY": "/salvage/target/shared",
                    "RESTIC_PASSWORD_FILE": "/pw",
                },
                host_config=api.create_host_config(
                    binds=[f"{target}:/salvage/target", f"{password}:/pw:ro"],
                    network_mode="none",
                ),
            )["Id"]
            for n in range(4)
        ]
        for crane in cranes:  # as close together as the engine allows
            api.start(crane)
        codes = [api.wait(crane, timeout=300)["StatusCode"] for crane in cranes]
        for crane in cranes:
            api.remove_container(crane, force=True)
        keys = len(list((target / "shared" / "keys").iterdir()))
        check = subprocess.run(
            [
                "docker",
                "run",
                "--rm",
                "--network",
                "none",
                "-v",
                f"{target}:/t",
                "-v",
                f"{password}:/pw:ro",
                "-e",
                "RESTIC_PASSWORD_FILE=/pw",
                "-e",
                "RESTIC_REPOSITORY=/t/shared",
                "--entrypoint",
                "restic",
                RESTIC,
                "check",
            ],
            env=dict(os.environ, DOCKER_HOST=fault_engine.host),
            capture_output=True,
        ).returncode
        leftovers = [p.name for p in target.iterdir() if p.name != "shared"]
        found.append(
            f"exit {' '.join(map(str, codes))}, {keys} key, check {check},"
            f" {len(leftovers)} leftovers"
        )
    api.close()
    table(
        "restic init by 4 hosts at once on one new repository, 3 times",
        "; ".join(["exit 0 0 0 0, 1 key, check 0, 0 leftovers"] * 3),
        "; ".join(found),
    )
