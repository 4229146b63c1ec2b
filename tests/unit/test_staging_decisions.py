"""Staging's decisions on the fake engine (salvage.crane.staging): which way each volume goes,
and that a stage never outlives its run. The copy itself is tested on a real engine
(tests/faults/test_staging.py)."""

from __future__ import annotations

import logging

import pytest
from docker.errors import APIError
from test_run_decisions import AS_FOUND, TIDE, backup, cranes, scene, states

from salvage.config.validate import validate
from salvage.core.planning import plan_tide
from salvage.engine.discovery import discover
from salvage.safety.record import Record


def _config(tmp_path, staging: str):
    found, problems = validate(
        {"state_directory": str(tmp_path / "state"), "tides": {"daily": {"staging": staging}}},
        "test.toml",
    )
    assert not problems
    return found


def _stagers(fake):
    return [c for c in fake.created if c.labels.get("salvage.stage")]  # not the probe


def _staging(api, container, command):
    """A stager that can: the probe passes, each check says reflinks, each copy works."""
    if command and "salvage-probe" in command:
        return 0, "reflink 65600 1000000 0\n"  # way, room, free (KiB), no margin
    return 0, ""


def _copies(fake):
    """The whole copies, containers down, run in stagers: (the stager's name, its command)."""
    return [
        (r.container.name, r.command) for r in fake._execs.values() if r.command.startswith("cp -a")
    ]


def test_a_staged_volume_is_backed_up_from_its_stage_with_every_container_back(fake, tmp_path):
    scene(fake)
    fake.stager = _staging
    seen = {}

    def crane(api, container):
        seen.update({c: api.state(c) for c in ("db", "web", "old")})
        seen["mounts"] = [(m["Source"], m["ReadOnly"]) for m in container.host_config["Mounts"]]
        seen["volume"] = container.env["SALVAGE_VOLUME_NAME"]
        return 0

    fake.crane = crane
    result = backup(fake, _config(tmp_path, "auto"))
    assert result.exit_code == 0 and result.downtime > 0
    (stager,) = _stagers(fake)
    (stage,) = seen["mounts"]
    assert stage[0].startswith("salvage-stage-") and stage[1] is True  # read-only
    assert set(stager.volumes) == {"data", stage[0]}
    assert seen["volume"] == "data"  # the crane is told the original's name
    assert (seen["db"], seen["web"]) == ("running", "running")  # up while the crane runs
    assert states(fake) == AS_FOUND
    assert not [v for v in fake.volume_list if v.startswith("salvage-stage-")]
    assert stager.id not in fake.by_id  # removed


def test_the_containers_are_down_only_for_the_copies(fake, tmp_path):
    """The stager is made, started and asked before anything goes down; the copy is an exec
    in it while the containers are down; it is removed once they are back."""
    scene(fake)
    seen = []

    def stager(api, container, command):
        if command and command.startswith("cp -a"):
            seen.append((api.state("db"), api.state("web")))
        return _staging(api, container, command)

    fake.stager = stager
    assert backup(fake, _config(tmp_path, "always")).exit_code == 0
    (stager_,) = _stagers(fake)
    db = next(c.id for c in fake.by_id.values() if c.name == "db")
    order = [
        (name, "stager" if args[0] == stager_.id else "db")
        for name, args in fake.calls
        if name in ("start", "stop", "remove_container") and args[0] in (stager_.id, db)
    ]
    assert order == [
        ("start", "stager"),
        ("stop", "db"),
        ("start", "db"),
        ("remove_container", "stager"),
    ]
    assert seen == [("exited", "paused")]  # the copy, containers down
    assert _copies(fake) == [(stager_.name, "cp -a --reflink=auto /source/0/. /stage/0/")]


@pytest.mark.parametrize("mode", ["auto", "always"])
def test_a_copy_that_fails_goes_like_a_stage_that_cannot_be_made(fake, tmp_path, caplog, mode):
    """auto: that volume's crane runs the classic way, containers still down, one line;
    always: the volume fails, no crane; the containers come back either way."""
    scene(fake)
    seen = {}

    def stager(api, container, command):
        if command and command.startswith("cp -a"):
            return 1, "cp: error writing '/stage/0/big': No space left on device\n"
        return _staging(api, container, command)

    fake.stager = stager
    fake.crane = lambda api, container: seen.update(db=api.state("db")) or 0
    result = backup(fake, _config(tmp_path, mode))
    lines = [r.getMessage() for r in caplog.records if "No space left" in r.getMessage()]
    assert len(lines) == 1, lines
    if mode == "auto":
        assert result.exit_code == 0 and seen["db"] == "exited"  # classic: down
        assert lines[0].startswith("volume data: not staged (cp: error writing")
    else:
        assert result.exit_code == 1 and seen == {}
        assert result.volumes[0].message.startswith("cannot be staged (staging = always)")
    assert states(fake) == AS_FOUND
    assert not [v for v in fake.volume_list if v.startswith("salvage-stage-")]
    assert not [c for c in fake.by_id.values() if c.labels.get("salvage.stage")]
    # The partial stage is gone before the containers start again: it may fill the disk.
    db = next(c.id for c in fake.by_id.values() if c.name == "db")
    calls = [(name, args[0]) for name, args in fake.calls if name in ("start", "remove_volume")]
    removed = [i for i, (name, _) in enumerate(calls) if name == "remove_volume"]
    assert removed and removed[0] < calls.index(("start", db))


def test_auto_stages_only_what_fits_beside_the_groups_other_copies(fake, tmp_path, caplog):
    """Without reflinks each full copy needs room; the checks run before any copy, so the
    room is counted for the group's copies together."""
    fake.add_volume("a")
    fake.add_volume("b")
    fake.add_container("db", labels={"salvage.tide.daily": "a,b"}, volumes=("a", "b"))

    def stager(api, container, command):
        if command and "salvage-probe" in command:
            return 0, "copy 60000 100000 0\n"  # room for one such copy, not two
        return 0, ""

    fake.stager = stager
    result = backup(fake, _config(tmp_path, "auto"))
    assert result.exit_code == 0
    notices = [r.getMessage() for r in caplog.records if "not staged" in r.getMessage()]
    assert notices == [
        "volume b: not staged (no room for a copy: it needs 58 MiB, 39 MiB free where the"
        " stage would be (no reflinks there)): backed up with its containers down"
    ]
    assert [command for _, command in _copies(fake)] == [
        "cp -a --reflink=auto /source/0/. /stage/0/"
    ]


def test_auto_goes_the_classic_way_when_it_cannot_stage(fake, tmp_path, caplog):
    scene(fake)  # the fake's stager cannot stage by default (no GNU cp)
    seen = {}
    fake.crane = lambda api, container: seen.update(db=api.state("db")) or 0
    result = backup(fake, _config(tmp_path, "auto"))
    assert result.exit_code == 0 and seen["db"] == "exited"  # down during the crane
    notices = [r for r in caplog.records if "not staged" in r.getMessage()]
    assert len(notices) == 1 and "no GNU cp" in notices[0].getMessage()
    assert _stagers(fake) == []  # asked once, before anything went down
    assert not [v for v in fake.volume_list if v.startswith("salvage-stage-")]


def test_always_fails_a_volume_it_cannot_stage_and_runs_no_crane(fake, tmp_path):
    scene(fake)
    result = backup(fake, _config(tmp_path, "always"))
    assert result.exit_code == 1
    assert [v.message for v in result.volumes][0].startswith("cannot be staged (staging = always)")
    assert cranes(fake) == [] and states(fake) == AS_FOUND
    assert not [v for v in fake.volume_list if v.startswith("salvage-stage-")]


def test_never_makes_no_stage(fake, tmp_path):
    scene(fake)
    fake.stager = _staging
    assert backup(fake, _config(tmp_path, "never")).exit_code == 0
    assert _stagers(fake) == [] and len(cranes(fake)) == 1


def test_nothing_is_staged_when_no_container_goes_down(fake, tmp_path):
    fake.add_volume("data")
    fake.add_container("db", labels={**TIDE, "salvage.action": "ignore"}, volumes=("data",))
    fake.stager = _staging
    assert backup(fake, _config(tmp_path, "always")).exit_code == 0
    assert _stagers(fake) == [] and len(cranes(fake)) == 1


def test_plan_says_which_way_each_group_goes(fake, tmp_path):
    scene(fake)
    for mode, way in (("auto", "staged if it fits"), ("always", "staged"), ("never", "classic")):
        config = _config(tmp_path, mode)
        plan = plan_tide(discover(fake.engine(), [config.tides["daily"]]), config, "daily")
        assert plan.as_dict()["groups"][0]["staging"]["way"] == way


def _live(api, container, command, answer="copy 65600 1000000 40"):
    """A stager that can fill the stage with the containers up (rsync, GNU find, a margin)."""
    if command and "salvage-probe" in command:
        return 0, answer + "\n"
    return 0, ""


def _execs(fake, fragment: str) -> list:
    return [r.command for r in fake._execs.values() if fragment in r.command]


def test_with_rsync_the_stage_is_filled_with_the_containers_up_and_synced_while_down(
    fake, tmp_path, caplog
):
    caplog.set_level(logging.INFO, "salvage")
    scene(fake)
    seen = []

    def stager(api, container, command):
        for phase, fragment in (("live", 'echo "$now'), ("sync", "--delete")):
            if command and fragment in command:
                seen.append((phase, api.state("db"), api.state("web")))
        return _live(api, container, command)

    fake.stager = stager
    assert backup(fake, _config(tmp_path, "auto")).exit_code == 0
    assert seen == [("live", "running", "running"), ("sync", "exited", "paused")]
    assert _execs(fake, "set -- 0 40\n") and not _copies(fake)  # the margin reaches the copy
    assert any("(copy, what changed since a live copy)" in r.getMessage() for r in caplog.records)
    assert states(fake) == AS_FOUND


@pytest.mark.parametrize(
    "mode, answer, live",
    [
        ("always", "copy 65600 1000 40", False),  # no room: never fill the disk under them
        ("auto", "reflink 65600 1000 40", False),  # a reflink copy is as quick as a sync
        ("auto", "copy 65600 1000000 0", False),  # no rsync, or no bound on dirty pages
    ],
)
def test_the_live_copy_is_made_only_when_it_cannot_harm(fake, tmp_path, mode, answer, live):
    scene(fake)
    fake.stager = lambda api, container, command: _live(api, container, command, answer)
    assert backup(fake, _config(tmp_path, mode)).exit_code == 0
    assert bool(_execs(fake, "salvage-since")) is live
    assert bool(_copies(fake)) is not live  # else the whole copy, containers down
    assert states(fake) == AS_FOUND


def test_a_live_copy_that_cannot_start_leaves_the_copy_to_the_downtime(fake, tmp_path):
    scene(fake)

    def stager(api, container, command):
        if command and 'echo "$now' in command:
            return 3, "/tmp: read-only file system\n"
        return _live(api, container, command)

    fake.stager = stager
    assert backup(fake, _config(tmp_path, "auto")).exit_code == 0
    assert len(_copies(fake)) == 1 and not _execs(fake, "--delete")
    assert states(fake) == AS_FOUND


def test_stages_and_the_stager_are_recorded_before_they_exist_and_left_once_removed(
    fake, tmp_path, monkeypatch
):
    scene(fake)
    fake.stager = _staging
    config = _config(tmp_path, "auto")
    seen = []

    def watch(kind, create):
        def call(*args, **kw):
            name = args[0] if kind == "stage" else kw.get("name")
            if kind == "stage" or (kw.get("labels") or {}).get("salvage.stage"):
                entries = Record(config.state_directory).entries()
                seen.append((kind, f"{kind}:{name}" in {e.container for e in entries}))
            return create(*args, **kw)

        return call

    monkeypatch.setattr(fake, "create_volume", watch("stage", fake.create_volume))
    monkeypatch.setattr(fake, "create_container", watch("stager", fake.create_container))
    assert backup(fake, config).exit_code == 0
    assert seen == [("stage", True), ("stager", True)]
    assert Record(config.state_directory).entries() == []
    assert states(fake) == AS_FOUND


def test_a_sync_that_cannot_be_signalled_runs_as_an_exec_of_its_own(fake, tmp_path, monkeypatch):
    """The armed sync waits for a SIGUSR1 to the stager; when the engine refuses it, the
    sync is an exec of its own, still with the containers down."""
    scene(fake)
    seen = []

    def stager(api, container, command):
        if command and "--delete" in command:
            seen.append(("echo salvage-armed" in command, api.state("db")))
        return _live(api, container, command)

    kill = fake.kill

    def refuse(ref, signal=None):
        if signal == "SIGUSR1":
            raise APIError("refused", explanation="refused")
        return kill(ref, signal)

    fake.stager = stager
    monkeypatch.setattr(fake, "kill", refuse)
    assert backup(fake, _config(tmp_path, "auto")).exit_code == 0
    assert seen == [(False, "exited")]  # the armed one never ran; the exec did, down
    assert states(fake) == AS_FOUND
