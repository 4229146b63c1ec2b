"""`salvage restore` on the fake engine: the snapshot goes into a scratch volume first,
the target's users are stopped only for the copy, and a copy cut short keeps them down."""

from __future__ import annotations

import json

import pytest

from salvage.actions import recover as recovering
from salvage.actions.restore import restore
from salvage.actions.snapshots import RestoreError
from salvage.engine.volumes import REPLACE
from salvage.safety.record import Record


class World:
    """What the volumes hold, and a crane and helpers that act on it."""

    def __init__(self, fake, **contents):
        self.fake, self.contents, self.copy_fails = fake, dict(contents), False
        for name in contents:
            fake.add_volume(name)
        fake.crane = self.run

    def run(self, api, container) -> int:
        script = container.command[-1] if container.command else ""
        action = container.env.get("SALVAGE_ACTION")
        if script.startswith("ls -A /v"):
            first = sorted(self.contents.get(container.volumes[0], ()))[:1]
            container.logs.append("".join(f"{name}\n" for name in first).encode())
        elif script == REPLACE:
            if self.copy_fails:
                container.logs.append(b"cp: No space left on device\n")
                return 1
            scratch, target = container.volumes
            self.contents[target] = set(self.contents.get(scratch, ()))
        elif action == "list":
            container.logs.append(json.dumps({"id": "s1", "time": "t"}).encode() + b"\n")
        elif action == "meta":
            container.logs.append(json.dumps({"volume": {"name": "data"}}).encode())
        elif action == "restore":
            self.contents[container.volumes[0]] = {"restored"}
        return 0


def users(fake):
    fake.add_container("db", volumes=("data",), labels={"salvage.tide.daily": "data"})
    fake.add_container("idle", "exited", volumes=("data",))


def test_a_restore_stops_the_users_for_the_copy_only_and_starts_them_again(fake, config):
    world = World(fake, data=set())
    users(fake)
    seen = []
    replace = world.run

    def run(api, container):
        if container.command[-1:] == [REPLACE]:
            seen.append(
                (fake.state("db"), [e.name for e in Record(config.state_directory).entries()])
            )
        return replace(api, container)

    fake.crane = run
    assert restore(fake.engine(), config, "data") == []
    assert world.contents["data"] == {"restored"}
    assert seen == [("exited", ["db", "data"])]  # the marker is on disk before the copy
    assert (fake.state("db"), fake.state("idle")) == ("running", "exited")
    assert Record(config.state_directory).entries() == []
    assert [v for v in fake.volume_list if v.startswith("salvage-restore-")] == []


def test_a_volume_that_holds_data_is_not_restored_over_without_force(fake, config):
    World(fake, data={"mine"})
    users(fake)
    with pytest.raises(RestoreError, match="volume data is not empty: not restoring over it"):
        restore(fake.engine(), config, "data")
    assert fake.state("db") == "running" and not fake.called("stop")


def test_a_copy_cut_short_keeps_the_users_down_until_the_same_restore_finishes_it(fake, config):
    world = World(fake, data=set())
    users(fake)
    world.copy_fails = True
    problems = restore(fake.engine(), config, "data")
    assert [str(p) for p in problems] == [
        "volume data: a restore of snapshot s1 was interrupted while replacing its content:"
        " its users db stay stopped until `salvage restore data --snapshot s1` finishes it"
    ]
    assert fake.state("db") == "exited"
    recovering.recover(fake.engine(), config)  # what a reboot's recovery does: not start it
    assert fake.state("db") == "exited"
    world.copy_fails = False
    assert restore(fake.engine(), config, "data") == []
    assert fake.state("db") == "running" and world.contents["data"] == {"restored"}
    assert Record(config.state_directory).entries() == []


def test_a_paused_user_refuses_the_restore(fake, config):
    World(fake, data=set())
    users(fake)
    fake.pause("db")
    with pytest.raises(RestoreError, match="volume data is used by paused db: unpause first"):
        restore(fake.engine(), config, "data")
