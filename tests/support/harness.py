"""Test harness shared by the suites that run against a real engine: images built from
the host's busybox, the containers/volumes/compose projects a test makes, Docker's event
log, and the `salvage` command run as a user runs it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from pathlib import Path

import docker

ROOT = Path(__file__).resolve().parents[2]
BUSYBOX = "salvage-test/busybox:latest"
TAR_CRANE = "salvage/crane-tar:latest"
SCRIPT_CRANE = "salvage-test/crane-script:latest"
# The tar crane's archives, in each of its TAR_COMPRESS formats (zstd, gzip, none).
ARCHIVE_SUFFIXES = (".tar.zst", ".tar.gz", ".tar")


def archive_paths(directory: Path) -> list:
    """The tar crane's archives in a volume's directory (not its hidden partial files)."""
    return sorted(p for p in directory.glob("[!.]*") if p.name.endswith(ARCHIVE_SUFFIXES))


_BUILT: dict = {}


def build_images(docker_host: str) -> dict:
    """The busybox base, the reference tar crane built from it, and a script crane; once per
    engine and test process."""
    if docker_host not in _BUILT:
        _BUILT[docker_host] = _build_images(docker_host)
    return _BUILT[docker_host]


def _build_images(docker_host: str) -> dict:
    env = dict(os.environ, DOCKER_HOST=docker_host)
    subprocess.run(
        [str(ROOT / "scripts/busybox-image"), BUSYBOX],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    build = ["docker", "build", "-q", "--build-arg", f"BASE={BUSYBOX}"]
    tar = ROOT / "salvage/crane/images/tar"
    subprocess.run(
        [*build, "-t", TAR_CRANE, str(tar)], check=True, env=env, stdout=subprocess.DEVNULL
    )
    # A crane whose behaviour a test sets through its env: CRANE_SCRIPT runs under sh.
    context = Path(tempfile.mkdtemp(prefix="salvage-crane-script-"))
    (context / "Dockerfile").write_text(
        f"FROM {BUSYBOX}\nRUN mkdir -p /salvage/volume /salvage/meta\n"
        'ENTRYPOINT ["/bin/sh", "-c", "eval \\"$CRANE_SCRIPT\\""]\n'
    )
    subprocess.run(
        [*build, "-t", SCRIPT_CRANE, str(context)], check=True, env=env, stdout=subprocess.DEVNULL
    )
    shutil.rmtree(context)
    return {"busybox": BUSYBOX, "tar": TAR_CRANE, "script": SCRIPT_CRANE}


class Stack:
    """Containers, volumes and compose projects made by one test, removed after it."""

    def __init__(self, api, host: str, tmp: Path) -> None:
        self.api, self.host, self.tmp = api, host, tmp
        self.prefix = "t" + uuid.uuid4().hex[:6]
        # Each test has its own tide, so stacks left by others on the engine do not count.
        self.tide = f"tide{self.prefix}"
        self.projects: list = []
        self.containers: list = []
        self.volumes: list = []

    @property
    def env(self) -> dict:
        return dict(os.environ, DOCKER_HOST=self.host)

    def compose(self, name: str, yaml: str) -> str:
        """Bring up a compose project; its real name is returned (prefixed, unique)."""
        project = f"{self.prefix}{name}"
        directory = self.tmp / project
        directory.mkdir(exist_ok=True)  # a test may put files there first
        (directory / "docker-compose.yml").write_text(textwrap.dedent(yaml))
        self.projects.append((project, directory))
        subprocess.run(
            ["docker-compose", "-p", project, "up", "-d"],
            cwd=directory,
            env=self.env,
            check=True,
            capture_output=True,
        )
        return project

    def volume(self, name: str) -> str:
        name = f"{self.prefix}-{name}"
        self.api.create_volume(name)
        self.volumes.append(name)
        return name

    def container(self, name: str, volumes=(), labels=None, command="sleep 3600", **host):
        """A plain (non-compose) container, running, with tini as PID 1 for fast stops."""
        name = f"{self.prefix}-{name}"
        config = self.api.create_host_config(
            binds=[f"{v}:/{v.split('-', 1)[-1]}" for v in volumes],
            init=True,
            network_mode="none",
            **host,
        )
        created = self.api.create_container(
            BUSYBOX,
            ["sh", "-c", command],
            name=name,
            labels=labels or {},
            host_config=config,
            stop_signal="SIGTERM",
        )
        self.api.start(created["Id"])
        self.containers.append(name)
        return name

    def shop(self, db_tides, other_tide: str, grace: str) -> tuple:
        """A small compose project: `db` (sh as PID 1 ignores SIGTERM, so each stop takes
        `grace`) and `app` (depends on db) share the volume `data`, labelled for `db_tides`;
        beside it a plain container whose own volume is labelled for `other_tide`.
        Returns (project, db, app, the other volume)."""
        labels = "".join(f"\n                  salvage.tide.{t}: data" for t in db_tides)
        project = self.compose(
            "shop",
            f"""
            version: "2.4"
            services:
              db:
                image: {BUSYBOX}
                network_mode: none
                command: sh -c 'echo db-data > /data/db.txt; sleep 3600'
                stop_grace_period: {grace}
                volumes: [data:/data]
                labels:{labels}
              app:
                image: {BUSYBOX}
                init: true
                network_mode: none
                command: sleep 3600
                depends_on: [db]
                volumes: [data:/data]
            volumes:
              data:
            """,
        )
        other = self.volume("other")
        self.container("other", [other], labels={f"salvage.tide.{other_tide}": f"g:{other}"})
        return project, self.id_of(project, "db"), self.id_of(project, "app"), other

    def archives_in(self, volume: str) -> list:
        """The tar crane's archive paths in a volume (a crane target that is a volume)."""
        config = self.api.create_host_config(binds=[f"{volume}:/t:ro"], network_mode="none")
        names = " -o ".join(f"-name '*{suffix}'" for suffix in ARCHIVE_SUFFIXES)
        box = self.api.create_container(
            BUSYBOX, ["sh", "-c", f"find /t {names}"], host_config=config
        )
        try:
            self.api.start(box)
            self.api.wait(box, timeout=60)
            return sorted(self.api.logs(box).decode().split())
        finally:
            self.api.remove_container(box, force=True)

    def state(self, container: str) -> str:
        return self.api.inspect_container(container)["State"]["Status"]

    def id_of(self, project: str, service: str) -> str:
        found = self.api.containers(
            all=True,
            filters={
                "label": [
                    f"com.docker.compose.project={project}",
                    f"com.docker.compose.service={service}",
                ]
            },
        )
        assert len(found) == 1, found
        return found[0]["Names"][0].lstrip("/")

    def states(self) -> dict:
        """name -> (id, state) of every container this test made."""
        mine = [
            c
            for c in self.api.containers(all=True)
            if c["Names"][0].lstrip("/").startswith(self.prefix)
        ]
        return {c["Names"][0].lstrip("/"): (c["Id"], c["State"]) for c in mine}

    def cleanup(self) -> None:
        for project, directory in self.projects:
            subprocess.run(
                ["docker-compose", "-p", project, "down", "-v", "-t", "1"],
                cwd=directory,
                env=self.env,
                capture_output=True,
            )
            # A test may have removed or broken its compose file: `down` then does nothing.
            by_label = {"label": f"com.docker.compose.project={project}"}
            for container in self.api.containers(all=True, filters=by_label):
                self.api.remove_container(container["Id"], force=True)
        for name in self.containers:
            try:
                self.api.remove_container(name, force=True)
            except docker.errors.NotFound:
                pass
        for project, _ in self.projects:  # once no container of the test uses them
            by_label = {"label": f"com.docker.compose.project={project}"}
            for volume in self.api.volumes(filters=by_label).get("Volumes") or []:
                self.api.remove_volume(volume["Name"], force=True)
        for name in self.volumes:
            try:
                self.api.remove_volume(name, force=True)
            except docker.errors.NotFound:
                pass


def running_cranes(api, tide: str) -> list:
    """The tide's backup cranes that run (not its stagers, which carry the crane labels too:
    a stager runs before the containers go down)."""
    found = api.containers(filters={"label": f"salvage.crane.tide={tide}"})
    return [c for c in found if "salvage.stage" not in (c.get("Labels") or {})]


def events(api, since: float) -> list:
    """Docker's own record of container events since `since`: (name, action) in order."""
    until = time.time() + 0.05
    found = []
    for event in api.events(
        since=int(since), until=int(until) + 1, decode=True, filters={"type": "container"}
    ):
        if event.get("timeNano", 0) >= since * 1e9:
            attrs = event.get("Actor", {}).get("Attributes", {})
            found.append((attrs.get("name"), event["Action"].split(":")[0], event["timeNano"]))
    return found


class Salvage:
    """The `salvage` command, run as a user would run it, against the test engine."""

    def __init__(self, host: str, tmp: Path, tide: str) -> None:
        self.host, self.tmp, self.tide = host, tmp, tide
        self.backups = tmp / "backups"
        self.config = tmp / "salvage.toml"

    def write_config(self, text: str) -> Path:
        self.config.write_text(textwrap.dedent(text).replace("@BACKUPS@", str(self.backups)))
        self.config.chmod(0o600)  # as an admin keeps it: salvage warns about anything wider
        return self.config

    @property
    def state(self) -> Path:
        return self.tmp / "state"

    def _use(
        self,
        crane: str,
        image: str,
        target: str,
        grouping: str,
        top: str,
        tide: str,
        lines: str,
        tail: str = "",
    ) -> Path:
        return self.write_config(
            f"""
            machine = "testhost"
            state_directory = "{self.state}"
            {top}
            [tides.{self.tide}]
            crane = "{crane}"
            grouping = "{grouping}"
            {tide}
            [cranes.{crane}]
            image = "{image}"
            pull = "never"
            mounts = {{ "@BACKUPS@" = "{target}" }}
            {lines}
            {tail}
            """
        )

    def use_tar(
        self, grouping: str = "smart", tide: str = "", crane: str = "", image: str = TAR_CRANE
    ) -> Path:
        """A config with the test's tide on the tar crane writing under self.backups.
        `tide`, `crane`: more lines for those tables."""
        return self._use("tar", image, "/salvage/target", grouping, "", tide, crane)

    def use_script(
        self, script: str, grouping: str = "smart", top: str = "", tide: str = "", crane: str = ""
    ) -> Path:
        """A config with the test's tide on the script crane: `script` runs under sh, with
        self.backups mounted at /out. `top`, `tide`, `crane`: more lines for those tables."""
        env = f"[cranes.script.env]\nCRANE_SCRIPT = '''{script}'''"
        return self._use("script", SCRIPT_CRANE, "/out", grouping, top, tide, crane, env)

    def __call__(self, *args: str, check_code=None):
        env = dict(os.environ, DOCKER_HOST=self.host)
        env.pop("SALVAGE_CONFIG", None)
        done = subprocess.run(
            [sys.executable, "-m", "salvage", "-c", str(self.config), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if check_code is not None:
            assert done.returncode == check_code, done.stderr + done.stdout
        return done

    def plan(self, *args: str) -> list:
        return json.loads(self("plan", "--json", *args).stdout)

    def archives(self) -> dict:
        """volume -> archive paths the tar crane wrote."""
        found: dict = {}
        for directory in sorted(p for p in self.backups.glob("*/*") if p.is_dir()):
            for path in archive_paths(directory):
                found.setdefault(path.parent.name, []).append(path)
        return found
