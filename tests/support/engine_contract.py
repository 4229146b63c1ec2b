"""The engine contract: what salvage relies on Docker to do, as tests that run unchanged
against a real dockerd (tests/integration/test_engine_contract.py) and against the fake
engine of the unit tests (tests/unit/test_engine_contract_fake.py). Whatever the fake
answers otherwise than Docker fails here, on the fake's side.

Each test drives the engine through docker-py's APIClient calls only; a driver makes its
containers (busybox programs on a real engine, the same programs described to the fake)
and does what the API cannot: end a container's process from inside, pin its files so
that a removal fails (a dead container), restart the engine.

A suite that uses it defines two fixtures: `engine`, a driver, and `own_engine`, a
driver on an engine of the test's own (one it may restart).
"""

from __future__ import annotations

import calendar
import os
import re
import shutil
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional

import pytest
from docker.errors import APIError, ImageNotFound, NotFound
from docker.types import Mount
from requests.exceptions import RequestException

BUSYBOX = "salvage-test/busybox:latest"
LABEL = "salvage-contract"  # on everything a test makes: its lists see only its own


@dataclass(frozen=True)
class Program:
    """What a container runs: `command` on a real engine (busybox), the rest for the fake."""

    command: tuple
    handles_term: Optional[int] = None  # its exit code on SIGTERM (None: no handler of its
    # own: as PID 1 it ignores SIGTERM, under --init it dies of it, 143)
    exits: Optional[int] = None  # it ends by itself at once, at each start, with this code
    ends: Optional[int] = None  # it ends by itself once told (`end`), then at each start


SLEEPS = Program(("sleep", "3600"))
HANDLES_TERM = Program(("sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.05; done"), 0)


def exits(code: int) -> Program:
    return Program(("sh", "-c", f"exit {code}"), exits=code)


def until_ended(code: int) -> Program:
    """Runs until `end`; from then on it exits at once with `code` (the file stays)."""
    script = f"while [ ! -e /tmp/end ]; do sleep 0.05; done; exit {code}"
    return Program(("sh", "-c", script), ends=code)


class Driver:
    """Makes and removes one test's containers and volumes on an engine."""

    patience = 30.0  # seconds `eventually` waits for the engine
    settle = 0.5  # seconds `stays` watches for a change that should not come

    def __init__(self, api) -> None:
        self.api = api
        self.prefix = "contract" + uuid.uuid4().hex[:6]
        self.label = f"{LABEL}={self.prefix}"
        self.made: List[str] = []
        self.volumes: List[str] = []
        self.directories: List[str] = []
        self.pinned: List[str] = []

    def name(self, hint: str) -> str:
        return f"{self.prefix}-{hint}"

    def run(
        self,
        hint: str,
        program: Program,
        *,
        start: bool = True,
        init: bool = False,
        restart: str = "",
        max_restarts: int = 0,
        auto_remove: bool = False,
        binds: tuple = (),
        mounts: tuple = (),
        labels: Optional[Dict[str, str]] = None,
        stop_timeout: Optional[int] = None,
    ) -> str:
        policy = {"Name": restart, "MaximumRetryCount": max_restarts} if restart else None
        host_config = self.api.create_host_config(
            init=init,
            restart_policy=policy,
            auto_remove=auto_remove,
            binds=list(binds) or None,
            mounts=list(mounts) or None,
        )
        created = self.api.create_container(
            BUSYBOX,
            list(program.command),
            name=self.name(hint),
            labels={LABEL: self.prefix, **(labels or {})},
            host_config=host_config,
            stop_timeout=stop_timeout,
        )
        self.made.append(created["Id"])
        self.describe(created["Id"], program, init)
        if start:
            self.api.start(created["Id"])
        return created["Id"]

    def describe(self, container: str, program: Program, init: bool) -> None:
        """What the fake must be told of a program (a real engine runs it)."""

    def volume(self, hint: str, labels: Optional[Dict[str, str]] = None) -> str:
        name = self.name(hint)
        self.volumes.append(name)
        self.api.create_volume(name, labels={LABEL: self.prefix, **(labels or {})})
        return name

    def host_directory(self) -> str:
        path = tempfile.mkdtemp(prefix="salvage-contract-")
        self.directories.append(path)
        return path

    def end(self, container: str) -> None:
        """Its process ends by itself (an `until_ended` program)."""
        raise NotImplementedError

    def pin(self, container: str, pinned: bool = True) -> None:
        """Its files cannot be removed (or can again)."""
        raise NotImplementedError

    def restart_engine(self) -> None:
        raise NotImplementedError

    def cleanup(self) -> None:
        for container in self.pinned:
            self.pin(container, False)
        for container in reversed(self.made):
            try:
                self.api.remove_container(container, force=True)
            except NotFound:
                pass
        for volume in self.volumes:
            try:
                self.api.remove_volume(volume, force=True)
            except NotFound:
                pass
        for path in self.directories:
            shutil.rmtree(path, ignore_errors=True)


class RealDriver(Driver):
    """On a real dockerd; `restart`: how to restart it (an engine of the test's own)."""

    def __init__(self, api, restart: Optional[Callable[[], object]] = None) -> None:
        super().__init__(api)
        self._restart = restart

    def end(self, container: str) -> None:
        run = self.api.exec_create(container, ["touch", "/tmp/end"])
        self.api.exec_start(run)

    def pin(self, container: str, pinned: bool = True) -> None:
        """An immutable file in the container's directory: its removal fails (EPERM)."""
        root = self.api.info()["DockerRootDir"]
        path = os.path.join(root, "containers", container, "salvage-contract-pin")
        if pinned:
            with open(path, "w") as stream:
                stream.write("pinned by the engine contract\n")
            subprocess.run(["chattr", "+i", path], check=True)
            self.pinned.append(container)
        elif os.path.exists(path):
            subprocess.run(["chattr", "-i", path], check=True)
            os.remove(path)

    def restart_engine(self) -> None:
        if self._restart is None:
            raise NotImplementedError("an engine of the test's own (own_engine) restarts")
        self._restart()


class FakeDriver(Driver):
    """On tests/support/fake_engine.py; its programs are described to it."""

    patience = 1.0
    settle = 0.0  # nothing changes in the fake between two calls

    def __init__(self, api) -> None:
        super().__init__(api)
        api.images.setdefault(BUSYBOX, {})
        self.programs: Dict[str, Program] = {}

    def describe(self, container: str, program: Program, init: bool) -> None:
        made = self.api.by_id[container]
        made.crane = False  # waited on, it is no crane: it runs its program
        made.exits = program.exits
        made.on_term = program.handles_term
        if program.handles_term is None:
            made.on_term = 143 if init else None
        self.programs[container] = program

    def end(self, container: str) -> None:
        code = self.programs[container].ends
        self.api.by_id[container].exits = code  # from now on it exits at once
        self.api.end(container, code)

    def pin(self, container: str, pinned: bool = True) -> None:
        if container in self.api.by_id:
            self.api.pin(container, pinned)
        if pinned:
            self.pinned.append(container)

    def restart_engine(self) -> None:
        self.api.restart_engine()


# -- helpers -----------------------------------------------------------------------------


def seconds(docker_time: str) -> float:
    """Docker's RFC 3339 time (nanoseconds, trailing zeros dropped) in epoch seconds."""
    match = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?Z", docker_time)
    assert match, docker_time
    whole = calendar.timegm(time.strptime(match.group(1), "%Y-%m-%dT%H:%M:%S"))
    return whole + float(match.group(2) or 0)


def eventually(engine: Driver, check: Callable[[], object], what: str):
    """Poll until `check()` is true (the engine acts on its own time); its value."""
    deadline = time.monotonic() + engine.patience
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {engine.patience:.0f} s: {what}")
        time.sleep(0.05)


def stays(engine: Driver, check: Callable[[], bool], what: str) -> None:
    """`check()` holds now and for a while (what should not happen, does not)."""
    deadline = time.monotonic() + engine.settle
    while True:
        assert check(), what
        if time.monotonic() >= deadline:
            return
        time.sleep(0.05)


def state(engine: Driver, container: str) -> dict:
    return engine.api.inspect_container(container)["State"]


def status(engine: Driver, container: str) -> Optional[str]:
    try:
        return state(engine, container)["Status"]
    except NotFound:
        return None


def listed(engine: Driver, every: bool, *labels: str) -> Dict[str, str]:
    """This test's containers in the list (with `all` or not): name -> State."""
    found = engine.api.containers(all=every, filters={"label": [engine.label, *labels]})
    return {item["Names"][0].lstrip("/"): item["State"] for item in found}


def brought_to(engine: Driver, hint: str, wanted: str, program: Program = SLEEPS) -> str:
    """A container of `program` (under --init) in state `wanted`, as a person gets there."""
    container = engine.run(hint, program, start=wanted != "created", init=True)
    if wanted == "paused":
        engine.api.pause(container)
    elif wanted == "exited":
        engine.api.stop(container, timeout=1)
    assert status(engine, container) == wanted
    return container


def refused(status_code: int, says: str, call: Callable[..., object], *args, **kwargs):
    with pytest.raises(APIError) as raised:
        call(*args, **kwargs)
    error = raised.value
    assert error.status_code == status_code, f"{error.status_code}: {error.explanation}"
    assert says in (error.explanation or ""), error.explanation
    return error


# -- the contract --------------------------------------------------------------------------


class EngineContract:
    """Docker's behaviour that salvage's promises rest on; `engine` and `own_engine`
    are the suite's fixtures (drivers)."""

    # -- states and transitions

    def test_a_created_container_is_listed_only_with_all(self, engine):
        container = engine.run("new", SLEEPS, start=False)
        assert state(engine, container)["Running"] is False
        assert status(engine, container) == "created"
        name = engine.name("new")
        assert listed(engine, False) == {} and listed(engine, True) == {name: "created"}

    def test_start_pause_and_unpause_keep_one_start_time(self, engine):
        container = engine.run("app", SLEEPS, init=True)
        first = state(engine, container)
        assert (first["Status"], first["Running"], first["Paused"]) == ("running", True, False)
        engine.api.start(container)  # already running: 304, no error, nothing changes
        assert state(engine, container)["StartedAt"] == first["StartedAt"]
        engine.api.pause(container)
        paused = state(engine, container)
        assert (paused["Status"], paused["Running"], paused["Paused"]) == ("paused", True, True)
        assert paused["StartedAt"] == first["StartedAt"]
        engine.api.unpause(container)
        back = state(engine, container)
        assert (back["Status"], back["StartedAt"]) == ("running", first["StartedAt"])

    @pytest.mark.parametrize("paused", [False, True], ids=["running", "paused"])
    @pytest.mark.parametrize(
        "program, init, code",
        [(HANDLES_TERM, False, 0), (SLEEPS, True, 143), (SLEEPS, False, 137)],
        ids=["handles-sigterm", "dies-of-sigterm", "ignores-sigterm"],
    )
    def test_stop_sends_sigterm_then_sigkill_once_the_timeout_is_over(
        self, engine, program, init, code, paused
    ):
        container = engine.run("app", program, init=init)
        if paused:  # Docker unpauses it for the signal
            engine.api.pause(container)
        engine.api.stop(container, timeout=1)
        after = state(engine, container)
        assert (after["Status"], after["ExitCode"]) == ("exited", code)
        assert (after["Running"], after["Paused"]) == (False, False)
        assert seconds(after["FinishedAt"]) >= seconds(after["StartedAt"])

    def test_a_stop_without_a_timeout_waits_the_container_s_own(self, engine):
        own = engine.run("own", SLEEPS, stop_timeout=1)
        default = engine.run("default", SLEEPS, start=False)
        assert engine.api.inspect_container(own)["Config"].get("StopTimeout") == 1
        assert engine.api.inspect_container(default)["Config"].get("StopTimeout") is None
        engine.api.stop(own)  # its 1 s, not Docker's 10
        assert (status(engine, own), state(engine, own)["ExitCode"]) == ("exited", 137)

    def test_a_stop_of_a_stopped_container_changes_nothing(self, engine):
        stopped = brought_to(engine, "stopped", "exited")
        created = brought_to(engine, "created", "created")
        before = state(engine, stopped)
        engine.api.stop(stopped, timeout=1)  # 304, no error
        engine.api.stop(created, timeout=1)
        assert state(engine, stopped) == before and status(engine, created) == "created"

    def test_a_start_after_a_stop_is_a_new_start(self, engine):
        container = brought_to(engine, "app", "exited")
        before = state(engine, container)
        engine.api.start(container)
        after = state(engine, container)
        assert after["Status"] == "running"
        assert seconds(after["StartedAt"]) > seconds(before["StartedAt"])

    @pytest.mark.parametrize("wanted", ["running", "paused"])
    def test_kill_ends_it_at_once_with_137(self, engine, wanted):
        container = brought_to(engine, "app", wanted)
        engine.api.kill(container)
        after = state(engine, container)
        assert (after["Status"], after["ExitCode"]) == ("exited", 137)

    # -- refusals and their HTTP status

    @pytest.mark.parametrize(
        "wanted, call, args, code, says",
        [
            ("created", "pause", (), 409, "is not running"),
            ("exited", "pause", (), 409, "is not running"),
            ("paused", "pause", (), 409, "is already paused"),
            ("running", "unpause", (), 500, "is not paused"),
            ("paused", "start", (), 409, "cannot start a paused container"),
            ("exited", "kill", (), 409, "is not running"),
            ("running", "remove_container", (), 409, "cannot remove a running container"),
            ("paused", "remove_container", (), 409, "cannot remove a paused container"),
            ("exited", "exec_create", (["true"],), 409, "is not running"),
            ("paused", "exec_create", (["true"],), 409, "is paused"),
        ],
    )
    def test_a_call_that_does_not_fit_the_state_is_refused_with_its_status(
        self, engine, wanted, call, args, code, says
    ):
        container = brought_to(engine, "app", wanted)
        refused(code, says, getattr(engine.api, call), container, *args)
        assert status(engine, container) == wanted

    def test_what_does_not_exist_is_404(self, engine):
        missing = engine.name("missing")
        for call in ("inspect_container", "start", "stop", "pause", "remove_container"):
            error = refused(404, "No such container", getattr(engine.api, call), missing)
            assert isinstance(error, NotFound), call
        for call in ("inspect_volume", "remove_volume"):
            error = refused(404, "no such volume", getattr(engine.api, call), missing)
            assert isinstance(error, NotFound), call
        image = f"salvage-contract/{engine.prefix}:missing"
        for call in (engine.api.inspect_image, engine.api.create_container):
            assert isinstance(refused(404, "No such image", call, image), ImageNotFound)

    def test_a_name_in_use_and_a_volume_in_use_are_conflicts(self, engine):
        volume = engine.volume("data")
        engine.run("app", SLEEPS, start=False, binds=(f"{volume}:/data",))
        refused(409, "is already in use", engine.run, "app", SLEEPS)
        refused(409, "volume is in use", engine.api.remove_volume, volume)

    def test_an_unknown_filter_is_refused_not_ignored(self, engine):
        refused(400, "Invalid filter 'salvage'", engine.api.containers, filters={"salvage": "x"})
        refused(400, "Invalid filter 'salvage'", engine.api.volumes, filters={"salvage": "x"})

    # -- restart policies

    @pytest.mark.parametrize("policy", ["always", "unless-stopped", "on-failure"])
    def test_a_process_that_ends_by_itself_is_started_again_by_its_policy(self, engine, policy):
        container = engine.run("app", until_ended(3), init=True, restart=policy)
        engine.end(container)
        eventually(
            engine,
            lambda: engine.api.inspect_container(container)["RestartCount"] >= 1,
            f"{policy}: started again",
        )
        assert status(engine, container) in ("running", "restarting")

    @pytest.mark.parametrize("policy, code", [("", 3), ("no", 3), ("on-failure", 0)])
    def test_a_process_that_ends_with_no_policy_that_applies_stays_exited(
        self, engine, policy, code
    ):
        container = engine.run("app", until_ended(code), init=True, restart=policy)
        engine.end(container)
        eventually(engine, lambda: status(engine, container) == "exited", "exited")
        info = engine.api.inspect_container(container)
        assert (info["State"]["ExitCode"], info["RestartCount"]) == (code, 0)

    def test_on_failure_gives_up_after_its_maximum(self, engine):
        container = engine.run("app", exits(3), restart="on-failure", max_restarts=2)

        def given_up():
            info = engine.api.inspect_container(container)
            return info["State"]["Status"] == "exited" and info["RestartCount"] == 2

        eventually(engine, given_up, "exited after 2 restarts")

    def test_a_crash_loop_is_restarting_and_live_until_a_stop_ends_it(self, engine):
        container = engine.run("loop", exits(3), restart="always")

        def looping():  # between two runs (it runs for a moment, then waits longer each time)
            info = engine.api.inspect_container(container)
            restarting = info["State"]["Status"] == "restarting" and info["RestartCount"] >= 1
            return info["State"] if restarting else None

        during = eventually(engine, looping, "restarting")
        assert (during["Running"], during["Restarting"], during["ExitCode"]) == (True, True, 3)
        name = engine.name("loop")
        eventually(engine, lambda: listed(engine, False) == {name: "restarting"}, "listed live")
        engine.api.stop(container, timeout=1)
        after = state(engine, container)
        assert (after["Status"], after["Restarting"], after["ExitCode"]) == ("exited", False, 3)
        assert listed(engine, False) == {}
        stays(engine, lambda: status(engine, container) == "exited", "stopped for good")

    @pytest.mark.parametrize("how, code", [("stop", 143), ("kill", 137)])
    def test_a_stop_or_a_kill_is_not_undone_by_the_restart_policy(self, engine, how, code):
        container = engine.run("app", SLEEPS, init=True, restart="always")
        if how == "stop":
            engine.api.stop(container, timeout=1)
        else:
            engine.api.kill(container)
        stays(engine, lambda: status(engine, container) == "exited", f"{how}ped for good")
        info = engine.api.inspect_container(container)
        assert (info["State"]["ExitCode"], info["RestartCount"]) == (code, 0)

    # -- AutoRemove (--rm)

    @pytest.mark.parametrize("how", ["stop", "kill", "end"])
    def test_an_auto_remove_container_is_removed_once_it_stops(self, engine, how):
        container = engine.run("rm", until_ended(0), init=True, auto_remove=True)
        assert engine.api.inspect_container(container)["HostConfig"]["AutoRemove"] is True
        if how == "stop":
            engine.api.stop(container, timeout=1)
        elif how == "kill":
            engine.api.kill(container)
        else:
            engine.end(container)
        eventually(engine, lambda: status(engine, container) is None, "removed")
        assert listed(engine, True) == {}

    def test_a_pause_leaves_an_auto_remove_container_in_place(self, engine):
        container = engine.run("rm", SLEEPS, init=True, auto_remove=True)
        engine.api.pause(container)
        engine.api.unpause(container)
        assert status(engine, container) == "running"

    def test_auto_remove_with_a_restart_policy_is_refused(self, engine):
        refused(400, "AutoRemove", engine.run, "rm", SLEEPS, auto_remove=True, restart="always")

    # -- the lists

    def test_the_list_without_all_has_the_live_containers_and_with_all_every_one(self, engine):
        brought_to(engine, "created", "created")
        brought_to(engine, "running", "running")
        brought_to(engine, "paused", "paused")
        brought_to(engine, "exited", "exited")
        engine.run("restarting", exits(3), restart="always")
        live = {
            engine.name("running"): "running",
            engine.name("paused"): "paused",
            engine.name("restarting"): "restarting",
        }
        every = {**live, engine.name("created"): "created", engine.name("exited"): "exited"}
        eventually(engine, lambda: listed(engine, False) == live, f"live: {live}")
        eventually(engine, lambda: listed(engine, True) == every, f"every one: {every}")

    def test_label_filters_match_a_key_or_a_key_and_its_value_all_of_them(self, engine):
        engine.run("a", SLEEPS, start=False, labels={"k": "1"})
        engine.run("b", SLEEPS, start=False, labels={"k": "2"})
        engine.run("c", SLEEPS, start=False, labels={"k": "1", "j": ""})
        engine.run("d", SLEEPS, start=False)
        names = {hint: engine.name(hint) for hint in "abcd"}
        assert set(listed(engine, True, "k")) == {names["a"], names["b"], names["c"]}
        assert set(listed(engine, True, "k=1")) == {names["a"], names["c"]}
        assert set(listed(engine, True, "k=1", "j")) == {names["c"]}
        assert set(listed(engine, True, "k=3")) == set()
        engine.volume("v1", {"k": "1"})
        engine.volume("v2", {"k": "2"})
        found = engine.api.volumes(filters={"label": [engine.label, "k=1"]})["Volumes"]
        assert [v["Name"] for v in found] == [engine.name("v1")]

    def test_the_list_and_inspect_show_bind_mounts_and_volumes_as_they_are(self, engine):
        host = engine.host_directory()
        volume = engine.volume("v")
        made = engine.name("made")  # created by the mount itself
        engine.volumes.append(made)
        container = engine.run(
            "app",
            SLEEPS,
            start=False,
            binds=(f"{host}:/data:ro", f"{volume}:/v"),
            mounts=(
                Mount("/b", host, type="bind"),
                Mount("/m", made, type="volume", read_only=True),
            ),
        )

        def shape(mounts):
            return {
                (m["Type"], m.get("Name") or m["Source"], m["Destination"], m["RW"]) for m in mounts
            }

        expected = {
            ("bind", host, "/data", False),
            ("bind", host, "/b", True),
            ("volume", volume, "/v", True),
            ("volume", made, "/m", False),
        }
        (item,) = engine.api.containers(all=True, filters={"label": engine.label})
        assert shape(item["Mounts"]) == expected
        assert shape(engine.api.inspect_container(container)["Mounts"]) == expected
        assert engine.api.inspect_volume(made)["Name"] == made

    def test_a_bind_mount_of_a_missing_host_path_is_refused(self, engine):
        missing = os.path.join(engine.host_directory(), "missing")
        bind = Mount("/b", missing, type="bind")
        refused(400, "bind source path does not exist", engine.run, "app", SLEEPS, mounts=(bind,))
        assert not os.path.exists(missing)

    # -- wait

    def test_wait_answers_the_exit_code_of_one_that_ended(self, engine):
        container = engine.run("app", exits(4))
        assert engine.api.wait(container, timeout=30)["StatusCode"] == 4

    def test_wait_gives_up_at_its_timeout(self, engine):
        container = engine.run("app", SLEEPS, init=True)
        with pytest.raises(RequestException, match="timed out"):
            engine.api.wait(container, timeout=1)
        assert status(engine, container) == "running"

    # -- on an engine of the test's own

    def test_a_container_whose_removal_failed_is_dead_and_cannot_start(self, own_engine):
        engine = own_engine
        container = brought_to(engine, "app", "exited")
        engine.pin(container)
        refused(500, "unable to remove filesystem", engine.api.remove_container, container)
        dead = state(engine, container)
        assert (dead["Status"], dead["Dead"], dead["Running"]) == ("dead", True, False)
        assert listed(engine, False) == {} and engine.name("app") in listed(engine, True)
        refused(409, "marked for removal", engine.api.start, container)
        engine.api.stop(container, timeout=1)  # 304, no error
        assert status(engine, container) == "dead"
        engine.pin(container, False)
        engine.api.remove_container(container)
        assert status(engine, container) is None

    def test_an_engine_restart_stops_every_container_then_applies_restart_policies(
        self, own_engine
    ):
        engine = own_engine
        made = {
            "always-up": engine.run("always-up", SLEEPS, init=True, restart="always"),
            "always-stopped": engine.run("always-stopped", SLEEPS, init=True, restart="always"),
            "unless-up": engine.run("unless-up", SLEEPS, init=True, restart="unless-stopped"),
            "unless-stopped": engine.run(
                "unless-stopped", SLEEPS, init=True, restart="unless-stopped"
            ),
            "failure-stopped": engine.run(
                "failure-stopped", SLEEPS, init=True, restart="on-failure"
            ),
            "none-up": engine.run("none-up", SLEEPS, init=True),
            "none-paused": engine.run("none-paused", SLEEPS, init=True),
            "rm-up": engine.run("rm-up", SLEEPS, init=True, auto_remove=True),
            "always-created": engine.run("always-created", SLEEPS, start=False, restart="always"),
        }
        for hint in ("always-stopped", "unless-stopped", "failure-stopped"):
            engine.api.stop(made[hint], timeout=1)  # a person's stop (exit code 143)
        engine.api.pause(made["none-paused"])
        engine.restart_engine()
        expected = {
            "always-up": "running",
            "always-stopped": "running",  # "always" starts even what a person stopped
            "unless-up": "running",
            "unless-stopped": "exited",
            "failure-stopped": "running",  # its last exit code was not 0
            "none-up": "exited",
            "none-paused": "exited",
            "rm-up": None,
            "always-created": "created",
        }

        def states():
            return {hint: status(engine, container) for hint, container in made.items()}

        eventually(engine, lambda: states() == expected, f"after the restart: {expected}")
        for hint in ("none-up", "none-paused"):
            assert state(engine, made[hint])["ExitCode"] == 143  # SIGTERM, under --init
