"""Restore, with the reference tar and restic cranes built from a Debian base: round trips
that keep every file's type, size, mode, owner, time and bytes; --to, --force and its
safety backup; the containers using a volume are down only during its restore."""

from __future__ import annotations

import json
import time

import pytest
from support.debian import (
    GNU_TAR_CRANE,
    RESTIC_CRANE,
    crane_image,
    debian_image,
    use_reference_cranes,
)
from support.harness import events

pytestmark = pytest.mark.boundary  # docs/testing.md: run again on the distribution's libraries

TAR, RESTIC = GNU_TAR_CRANE, RESTIC_CRANE
# Files of every kind, owners and modes; 200 MB of random bytes that no compression helps.
FILL = """
set -e
cd /v
mkdir -p empty-dir deep/er/est docs
echo hello > docs/a.txt && chown 1000:1000 docs/a.txt && chmod 0640 docs/a.txt
printf 'x%.0s' $(seq 1 5000) > docs/b.bin && chown 33:33 docs/b.bin && chmod 0604 docs/b.bin
: > empty-file && chown 999:998 empty-file && chmod 0600 empty-file
echo secret > deep/er/est/c && chown 70:70 deep/er/est/c && chmod 0400 deep/er/est/c
ln docs/a.txt hard-link
ln -s docs/a.txt relative-link
ln -s /nonexistent dangling-link
chown 1000:2000 deep && chmod 0750 deep && chmod 2775 docs
head -c 200M /dev/urandom > big
touch -d '2021-02-03 04:05:06' docs/a.txt deep/er empty-dir
touch -h -d '2020-01-01 00:00:00' relative-link
chown 1000:1000 . && chmod 0750 .
"""
MANIFEST = (
    "cd /v && find . -exec stat -c '%n|%F|%s|%a|%u|%g|%Y|%h' {} + | sort"
    " && find . -type f -exec sha256sum {} + | sort"
)


@pytest.fixture(scope="session")
def cranes(docker_host, images):
    for crane, tag in (("tar", TAR), ("restic", RESTIC)):
        crane_image(docker_host, crane, tag)
    return debian_image(docker_host)


def _in(api, image, volume, script, ro=False) -> str:
    created = api.create_container(
        image,
        ["sh", "-c", script],
        host_config=api.create_host_config(binds=[f"{volume}:/v{':ro' * ro}"], network_mode="none"),
    )
    try:
        api.start(created)
        code = api.wait(created, timeout=300)["StatusCode"]
        output = api.logs(created, stdout=True, stderr=True).decode()
        assert code == 0, output
        return api.logs(created, stdout=True, stderr=False).decode()
    finally:
        api.remove_container(created, force=True)


def _manifest(api, cranes, volume) -> list:
    lines = _in(api, cranes, volume, MANIFEST, ro=True).splitlines()
    # A directory's size is the filesystem's business, not the data's.
    return [
        "|".join(p[:2] + ["-"] + p[3:])
        if len(p := line.split("|")) > 3 and p[1] == "directory"
        else line
        for line in lines
    ]


def _config(salvage, crane: str, tmp_path, tar_env: str = "") -> None:
    use_reference_cranes(salvage, crane, tmp_path, tmp_path / "state", TAR, tar_env)


@pytest.mark.parametrize("crane", ["tar", "restic"])
def test_round_trip_keeps_every_file_as_it_was(stack, salvage, api, cranes, tmp_path, crane):
    volume = f"{stack.prefix}-data"
    compose = {"com.docker.compose.project": stack.prefix, "com.docker.compose.volume": "data"}
    api.create_volume(volume, labels={**compose, "owner": "me"})
    stack.volumes.append(volume)
    _in(api, cranes, volume, FILL)
    before = _manifest(api, cranes, volume)
    app = stack.container("app", [volume], labels={f"salvage.tide.{stack.tide}": f"g:{volume}"})
    _config(salvage, crane, tmp_path)
    salvage("run", check_code=0)
    if crane == "restic":
        repository = salvage.backups / "testhost"
        size = sum(f.stat().st_size for f in repository.rglob("*") if f.is_file())
        time.sleep(1)  # a snapshot's time is the run's second: make it another one
        salvage("run", check_code=0)
        grown = sum(f.stat().st_size for f in repository.rglob("*") if f.is_file()) - size
        assert grown < 1_000_000, f"the unchanged volume's second backup added {grown} bytes"
        _assert_encrypted(api, repository)

    api.remove_container(app, force=True)
    api.remove_volume(volume)
    done = salvage("restore", volume)
    assert done.returncode == 0, done.stderr
    assert _manifest(api, cranes, volume) == before
    labels = api.inspect_volume(volume)["Labels"]
    assert labels["com.docker.compose.project"] == stack.prefix and labels["owner"] == "me"


def _assert_encrypted(api, repository) -> None:
    blobs = b"".join(f.read_bytes() for f in repository.rglob("*") if f.is_file())
    assert b"secret\n" not in blobs and b"hello\n" not in blobs
    created = api.create_container(
        RESTIC,
        ["snapshots"],
        entrypoint=["restic"],
        environment={"RESTIC_REPOSITORY": "/repo", "RESTIC_PASSWORD": "wrong"},
        host_config=api.create_host_config(binds=[f"{repository}:/repo:ro"], network_mode="none"),
    )
    try:
        api.start(created)
        assert api.wait(created)["StatusCode"] != 0  # unreadable without the password
    finally:
        api.remove_container(created, force=True)


def test_empty_volume_round_trips(stack, salvage, api, cranes, tmp_path):
    volume = stack.volume("empty")
    app = stack.container("app", [volume], labels={f"salvage.tide.{stack.tide}": f"g:{volume}"})
    _config(salvage, "tar", tmp_path)
    salvage("run", check_code=0)
    api.remove_container(app, force=True)
    api.remove_volume(volume)
    salvage("restore", volume, check_code=0)
    assert _in(api, cranes, volume, "ls -A /v") == ""


def test_to_force_and_safety_backup(stack, salvage, api, cranes, tmp_path):
    volume = stack.volume("data")
    _in(api, cranes, volume, "echo first > /v/f")
    app = stack.container("app", [volume], labels={f"salvage.tide.{stack.tide}": f"g:{volume}"})
    _config(salvage, "tar", tmp_path)
    salvage("run", check_code=0)
    _in(api, cranes, volume, "echo second > /v/f; echo new > /v/g")
    now = _manifest(api, cranes, volume)

    copy = f"{stack.prefix}-copy"
    stack.volumes.append(copy)
    salvage("restore", volume, "--to", copy, check_code=0)
    assert _in(api, cranes, copy, "cat /v/f; ls /v") == "first\nf\n"
    assert _manifest(api, cranes, volume) == now  # the original is untouched

    states = stack.states()
    refused = salvage("restore", volume)
    assert refused.returncode == 1
    assert f"volume {volume} is not empty: not restoring over it without --force" in refused.stderr
    assert _manifest(api, cranes, volume) == now and stack.states() == states

    missing = salvage("restore", volume, "--snapshot", "20000101T000000Z")
    assert missing.returncode == 1 and "has no snapshot 20000101T000000Z of" in missing.stderr

    time.sleep(1)  # the safety backup is a snapshot of its own second
    since = time.time()
    salvage("restore", volume, "--force", check_code=0)
    assert _in(api, cranes, volume, "cat /v/f; ls /v") == "first\nf\n"
    assert stack.states() == states  # same ids, same states
    down_and_up = [a for n, a, _ in events(api, since) if n == app and a in ("die", "start")]
    assert down_and_up == ["die", "start"]  # down for the restore only, then back

    snapshots = salvage("snapshots", volume, "--json")
    ids = [s["id"] for s in json.loads(snapshots.stdout)]
    assert len(ids) == 2  # the first backup and the safety backup, newest first
    safety = f"{stack.prefix}-safety"
    stack.volumes.append(safety)
    salvage("restore", volume, "--snapshot", ids[0], "--to", safety, check_code=0)
    assert _manifest(api, cranes, safety) == now  # what --force replaced is all there


# What each TAR_COMPRESS writes: the archive's suffix and its first bytes (tar's own magic
# is "ustar" at offset 257). The Debian base has zstd, so zstd is the default there.
FORMATS = {
    "zstd": (".tar.zst", 0, b"\x28\xb5\x2f\xfd"),
    "gzip": (".tar.gz", 0, b"\x1f\x8b"),
    "none": (".tar", 257, b"ustar"),
}


def _next_second() -> None:
    """Wait until the clock shows another second: each run's snapshot is named after its."""
    start = int(time.time())
    while int(time.time()) == start:
        time.sleep(0.05)


@pytest.mark.parametrize("compress", ["zstd", "gzip", "none", ""])
def test_tar_compress_round_trips_in_the_format_asked(
    stack, salvage, api, cranes, tmp_path, compress
):
    volume = stack.volume("data")
    _in(
        api,
        cranes,
        volume,
        "echo hi > /v/a; head -c 300000 /dev/urandom > /v/r; "
        "mkdir /v/d && chown 33:44 /v/d && chmod 0710 /v/d; seq 1 50000 > /v/d/n",
    )
    before = _manifest(api, cranes, volume)
    app = stack.container("app", [volume], labels={f"salvage.tide.{stack.tide}": f"g:{volume}"})
    _config(salvage, "tar", tmp_path, f'TAR_COMPRESS = "{compress}"' if compress else "")
    salvage("run", check_code=0)
    suffix, offset, magic = FORMATS[compress or "zstd"]
    (archive,) = salvage.archives()[volume]
    assert archive.name.endswith(suffix) and not archive.name.endswith(".tar" + suffix)
    assert archive.read_bytes()[offset : offset + len(magic)] == magic
    verified = salvage("verify", "--restore", volume)
    assert verified.returncode == 0, verified.stderr
    api.remove_container(app, force=True)
    api.remove_volume(volume)
    salvage("restore", volume, check_code=0)
    assert _manifest(api, cranes, volume) == before


def test_tar_reads_every_format_after_the_setting_changes(stack, salvage, api, cranes, tmp_path):
    """Archives written before (gzip, then none) still list and restore once the crane
    writes zstd."""
    volume = stack.volume("data")
    stack.container("app", [volume], labels={f"salvage.tide.{stack.tide}": f"g:{volume}"})
    contents = {}
    for compress in ("gzip", "none", "zstd"):
        _in(api, cranes, volume, f"echo {compress} > /v/f")
        _config(salvage, "tar", tmp_path, f'TAR_COMPRESS = "{compress}"')
        _next_second()
        salvage("run", check_code=0)
        contents[compress] = _manifest(api, cranes, volume)
    names = sorted(p.name for p in salvage.archives()[volume])
    assert [n.split(".", 1)[1] for n in names] == ["tar.gz", "tar", "tar.zst"]
    listed = json.loads(salvage("snapshots", volume, "--json", check_code=0).stdout)
    ids = [s["id"] for s in listed]
    assert ids == [n.split(".", 1)[0] for n in reversed(names)]  # newest first
    sizes = {p.name.split(".", 1)[0]: p.stat().st_size for p in salvage.archives()[volume]}
    assert [s["size"] for s in listed] == [sizes[i] for i in ids]
    for snapshot, compress in zip(ids, ("zstd", "none", "gzip")):
        copy = f"{stack.prefix}-{compress}"
        stack.volumes.append(copy)
        salvage("restore", volume, "--snapshot", snapshot, "--to", copy, check_code=0)
        assert _in(api, cranes, copy, "cat /v/f") == f"{compress}\n"
        assert _manifest(api, cranes, copy) == contents[compress]
