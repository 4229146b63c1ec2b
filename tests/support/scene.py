"""A fault's world for the fault-injection suite (tests/faults): containers and volumes on
the suite's own engine, a crane that waits for a go-ahead, and the checks a user makes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import docker

from salvage.safety.record import Record, RecordError
from support.dockerd import PrivateDockerd
from support.harness import BUSYBOX, SCRIPT_CRANE

CALM = "containers as before; volumes unchanged; no crane left; record empty"
# A volume's files and their bytes, in a form two volumes' contents compare by.
LISTING = "cd /v && find . | sort && find . -type f -exec sha256sum {} + | sort"


def wait_for(predicate, what: str, timeout: float = 60):
    """Wait for a condition the test does not control the timing of."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


class Scene:
    """One fault's world: containers, volumes, a salvage config whose crane waits for a
    go-ahead file, and the checks that everything ended as it began."""

    def __init__(self, engine: PrivateDockerd, tmp: Path) -> None:
        self.engine, self.tmp = engine, tmp
        self.api = docker.APIClient(base_url=engine.host, version="auto", timeout=120)
        self.prefix = "f" + uuid.uuid4().hex[:6]
        self.tide = f"tide{self.prefix}"
        self.out = tmp / "out"  # the crane's target; it writes <volume>.started there
        self.out.mkdir()
        self.signals = tmp / "signals"  # bind-mounted into containers for commands
        self.signals.mkdir()
        self.state = tmp / "state"
        self.volumes: list = []
        self.names: list = []
        self.config = self.write_config()

    def write_config(
        self, tide_extra: str = "", top: str = "", name="salvage.toml", docker: str = ""
    ) -> Path:
        script = (
            "touch /out/$SALVAGE_VOLUME_NAME.started; case $CRANE_MODE in fail) exit 3;;"
            " hang) sleep 600;; report) head -c 1000000 /dev/urandom > /salvage/meta/result.json;;"
            " esac; while [ ! -e /out/go ]; do sleep 0.05; done;"
            " cp -a /salvage/volume /out/$SALVAGE_VOLUME_NAME.copy"
        )
        path = self.tmp / name
        path.write_text(
            textwrap.dedent(f"""
            machine = "faults"
            state_directory = "{self.state}"
            {top}
            [docker]
            retries = 6
            {docker}
            [tides.{self.tide}]
            crane = "script"
            {tide_extra}
            [cranes.script]
            image = "{SCRIPT_CRANE}"
            pull = "never"
            mounts = {{ "{self.out}" = "/out" }}
            env = {{ CRANE_SCRIPT = '{script}', CRANE_MODE = "{{mode}}" }}
            """).replace("{mode}", "wait")
        )
        path.chmod(0o600)
        return path

    def crane_mode(self, mode: str) -> None:
        text = self.config.read_text().replace('CRANE_MODE = "wait"', f'CRANE_MODE = "{mode}"')
        self.config.write_text(text)

    def volume(self, name: str) -> str:
        name = f"{self.prefix}-{name}"
        self.api.create_volume(name)
        # Some data, written once: a crane must never change it.
        self.run_once(name, "echo important > /v/data; mkdir -p /v/dir; echo x > /v/dir/f")
        self.volumes.append(name)
        return name

    def run_once(self, volume: str, command: str) -> str:
        created = self.api.create_container(
            BUSYBOX,
            ["sh", "-c", command],
            host_config=self.api.create_host_config(binds=[f"{volume}:/v"], network_mode="none"),
        )
        self.api.start(created)
        self.api.wait(created)
        output = self.api.logs(created).decode()
        self.api.remove_container(created, force=True)
        return output

    def container(
        self,
        name: str,
        volumes,
        labels=None,
        init=True,
        stop_timeout=None,
        command=("sleep", "3600"),
        **host,
    ) -> str:
        """`host`: more of Docker's host config (auto_remove, restart_policy...)."""
        name = f"{self.prefix}-{name}"
        labels = dict(labels or {})
        binds = [f"{v}:/{v.split('-', 1)[1]}" for v in volumes] + [f"{self.signals}:/signals"]
        created = self.api.create_container(
            BUSYBOX,
            list(command),
            name=name,
            labels=labels,
            stop_timeout=stop_timeout,
            host_config=self.api.create_host_config(
                binds=binds, init=init, network_mode="none", **host
            ),
        )
        self.api.start(created)
        self.names.append(name)
        return name

    def label(self, *volumes: str) -> dict:
        return {f"salvage.tide.{self.tide}": ",".join(f"g:{v}" for v in volumes)}

    # --- salvage --------------------------------------------------------------------------

    def env(self, **extra) -> dict:
        env = dict(os.environ, DOCKER_HOST=self.engine.host)
        env.update(extra)
        env.pop("SALVAGE_CONFIG", None)
        return env

    def salvage(self, *args: str, config=None, **env) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "salvage", "-c", str(config or self.config), *args],
            env=self.env(**env),
            capture_output=True,
            text=True,
            timeout=300,
        )

    def start_run(self, config=None) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "salvage", "-c", str(config or self.config), "run"],
            env=self.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def crane_started(self, volume: str) -> None:
        wait_for(lambda: (self.out / f"{volume}.started").exists(), f"the crane of {volume}")

    def go(self) -> None:
        (self.out / "go").touch()

    @staticmethod
    def kill(proc: subprocess.Popen, sig=signal.SIGKILL) -> str:
        proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=120)
        return stderr

    # --- checks ---------------------------------------------------------------------------

    def states(self) -> dict:
        found = self.api.containers(all=True, filters={"name": self.prefix})
        return {c["Names"][0].lstrip("/"): (c["Id"], c["State"]) for c in found}

    def state_of(self, name: str) -> str:
        return self.states().get(name, (None, "removed"))[1]

    def digests(self) -> dict:
        return {v: self.run_once(v, LISTING) for v in self.volumes}

    def snapshot(self) -> None:
        self.before = (self.states(), self.digests())

    def observe(self, allow=()) -> str:
        """What a user would check afterwards, in words; `allow`: names a person changed."""
        states, digests = self.before
        now = self.states()
        notes = []
        changed = sorted(n for n in set(states) | set(now) if states.get(n) != now.get(n))
        notes.append(
            "containers as before"
            if set(changed) <= set(allow)
            else "containers changed: "
            + ", ".join(
                f"{n} {states.get(n, ('', 'absent'))[1]}->{now.get(n, ('', 'absent'))[1]}"
                for n in changed
                if n not in allow
            )
        )
        notes.append("volumes unchanged" if self.digests() == digests else "VOLUMES CHANGED")
        mine = {"label": f"salvage.instance={self.state}"}
        cranes = self.api.containers(all=True, filters=mine)
        notes.append("no crane left" if not cranes else f"{len(cranes)} crane(s) left")
        try:
            empty = not Record(str(self.state)).entries()
            notes.append("record empty" if empty else "record holds entries")
        except RecordError as error:
            notes.append(f"record unreadable: {error}")
        return "; ".join(notes)

    def cleanup(self) -> None:
        for name in self.names:
            try:
                self.api.remove_container(name, force=True)
            except docker.errors.NotFound:
                pass
        for crane in self.api.containers(
            all=True, filters={"label": f"salvage.instance={self.state}"}
        ):
            self.api.remove_container(crane["Id"], force=True)
        for volume in self.volumes:
            self.api.remove_volume(volume, force=True)
        self.api.close()
