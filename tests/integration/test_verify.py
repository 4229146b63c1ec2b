"""`salvage verify` against real backups of the reference cranes: a good backup verifies
with no container touched; a byte flipped in the tar archive or in a restic pack is one
line naming the volume and the reason, exit 1."""

from __future__ import annotations

import io
import json
import tarfile
import time

import pytest
from support.harness import events
from support.receiver import Receiver
from test_restore import RESTIC, TAR, _in, cranes  # noqa: F401 - the cranes fixture


def _flip(path) -> None:
    """One byte in the middle of a file, inverted (its size unchanged)."""
    path.chmod(0o600)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _config(salvage, crane: str, image: str) -> None:
    password = salvage.tmp / "restic-password"
    password.write_text("correct horse battery staple")
    password.chmod(0o600)
    salvage.write_config(
        f"""
        machine = "testhost"
        state_directory = "{salvage.tmp}/state"
        metrics_directory = "{salvage.tmp}"
        [tides.{salvage.tide}]
        crane = "{crane}"
        [cranes.{crane}]
        image = "{image}"
        pull = "never"
        mounts = {{ "@BACKUPS@" = "/salvage/target" }}
        secrets = {{ RESTIC_PASSWORD = "{password}" }}
        env = {{ RESTIC_CHECK_SUBSET = "100%" }}
        """
    )


def _verify_touches_nothing(salvage, stack, api, *args):
    before, since = stack.states(), time.time()
    done = salvage("verify", *args)
    assert stack.states() == before  # same ids, same states
    mine = set(before)
    assert [e for e in events(api, since) if e[0] in mine] == []  # not even a pause
    return done


@pytest.mark.parametrize("crane", ["tar", "restic"])
def test_verify_passes_then_fails_on_a_flipped_byte(stack, salvage, api, request, crane):
    base = request.getfixturevalue("cranes")
    volume = stack.volume("data")
    _in(api, base, volume, "head -c 300000 /dev/urandom > /v/random; echo hello > /v/small")
    stack.container("app", [volume], labels={f"salvage.tide.{stack.tide}": f"g:{volume}"})
    _config(salvage, crane, TAR if crane == "tar" else RESTIC)
    salvage("run", check_code=0)

    good = _verify_touches_nothing(salvage, stack, api)
    assert good.returncode == 0, good.stderr
    assert good.stdout == "verified 1 volume(s): the newest snapshot of each is intact\n"
    assert _verify_touches_nothing(salvage, stack, api, volume).returncode == 0
    restored = _verify_touches_nothing(salvage, stack, api, "--restore", volume)
    assert restored.returncode == 0, restored.stderr
    assert "restored" in restored.stderr and _scratch_volumes(api) == []
    (tide,) = json.loads(salvage("status", "--json", check_code=0).stdout)
    assert tide["volumes"][0]["verified"]["ok"] is True
    assert tide["volumes"][0]["verified"]["restore"] is True

    if crane == "tar":
        (archive,) = salvage.archives()[volume]
        _flip(archive)
        reason = f'crane "tar" exited with 1: archive /salvage/target/testhost/{volume}/'
    else:
        packs = [p for p in (salvage.backups / "testhost" / "data").rglob("*") if p.is_file()]
        _flip(max(packs, key=lambda p: p.stat().st_size))  # the one holding the random bytes
        reason = 'crane "restic" exited with 1: restic crane: restic check failed'
    bad = _verify_touches_nothing(salvage, stack, api, volume)
    assert bad.returncode == 1, bad.stderr
    (line,) = [x for x in bad.stderr.splitlines() if "verify failed" in x]
    assert f"volume {volume}: verify failed: {reason}" in line, line
    assert "Traceback" not in bad.stderr
    status = salvage("status", "--json")
    assert status.returncode == 1  # the last verify failed
    verified = json.loads(status.stdout)[0]["volumes"][0]["verified"]
    assert verified["ok"] is False and reason in verified["error"]
    prom = (salvage.tmp / "salvage.prom").read_text()
    assert f'salvage_volume_last_verify_success{{tide="{stack.tide}",volume="{volume}"}} 0' in prom
    assert "FAILED" in salvage("status").stdout


def test_a_crane_that_declares_no_verify_is_never_asked(stack, salvage, api):
    volume = stack.volume("data")
    stack.container("app", [volume], labels={f"salvage.tide.{stack.tide}": f"g:{volume}"})
    salvage.use_script("touch /out/called-$SALVAGE_ACTION")
    done = salvage("verify", "--tide", stack.tide)
    assert done.returncode == 1
    assert f'volume {volume}: verify failed: crane "script" cannot verify' in done.stderr
    assert not (salvage.backups / "called-verify").exists()
    assert json.loads(salvage("history", "--json").stdout) == []  # verify is not a run


def _scratch_volumes(api) -> list:
    return [v["Name"] for v in api.volumes(filters={"label": "salvage.scratch"})["Volumes"] or []]


def test_verify_restore_compares_a_test_restore_with_the_backups_manifest(stack, salvage, api):
    volume = stack.volume("data")
    stack.container(
        "app",
        [volume],
        labels={f"salvage.tide.{stack.tide}": f"g:{volume}"},
        command="mkdir -p /data/d && echo hello > /data/d/f && chmod 0640 /data/d/f"
        " && chown 33:33 /data/d/f && ln -sf d/f /data/link; sleep 3600",
    )
    salvage.use_tar()
    salvage("run", check_code=0)
    good = _verify_touches_nothing(salvage, stack, api, "--restore", volume)
    assert good.returncode == 0, good.stderr
    assert "lines of its manifest match" in good.stderr
    assert _scratch_volumes(api) == []  # the throwaway volume is gone

    # Someone with write access to the store swaps a file's bytes: a valid archive (gzip and
    # listing are fine, same size), but not what was backed up.
    (archive,) = salvage.archives()[volume]
    (archive.parent / (archive.name[:-7] + ".result.json")).unlink()
    tampered = archive.with_suffix(".new")
    with tarfile.open(archive) as old, tarfile.open(tampered, "w:gz") as new:
        for member in old.getmembers():
            data = old.extractfile(member) if member.isfile() else None
            if member.name == "volume/d/f":
                data = io.BytesIO(b"jello\n")
            new.addfile(member, data)
    tampered.replace(archive)
    assert salvage("verify", volume).returncode == 0  # the archive itself is sound
    bad = _verify_touches_nothing(salvage, stack, api, "--restore", volume)
    assert bad.returncode == 1, bad.stderr
    (line,) = [x for x in bad.stderr.splitlines() if "verify failed" in x]
    assert f'volume {volume}: verify failed: crane "tar" exited with 1: snapshot' in line
    assert "restores differently from its manifest: " in line and "./d/f" in line
    assert _scratch_volumes(api) == []


def test_a_failed_verify_is_a_notification(stack, salvage, api):
    volume = stack.volume("data")
    stack.container(
        "app",
        [volume],
        labels={f"salvage.tide.{stack.tide}": f"g:{volume}"},
        command="head -c 50000 /dev/urandom > /data/f; sleep 3600",
    )
    server = Receiver()
    try:  # no `events`: the default failures, verify.failure among them
        salvage.use_tar(crane=f'[[notify]]\nkind = "webhook"\nurl = "{server.url("/hook")}"')
        salvage("run", check_code=0)
        salvage("verify", check_code=0)
        assert server.requests == []
        (archive,) = salvage.archives()[volume]
        _flip(archive)
        salvage("verify", check_code=1)
        (told,) = [r.json for r in server.at("/hook")]
    finally:
        server.close()
    assert told["event"] == "verify.failure" and told["volume"] == volume
    assert told["message"].startswith(
        f'salvage on testhost: volume {volume} failed verification: crane "tar" exited with 1:'
        f" archive /salvage/target/testhost/{volume}/"
    )
