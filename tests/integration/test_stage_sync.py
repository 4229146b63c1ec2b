"""Staging's live copy and sync (salvage.crane.staging PRESYNC and SYNC), the very scripts
a stager runs, here run on this host's rsync, GNU find and cp over two directories: a
volume changed in random ways after its live copy began must come out of SYNC equal to
the stage, owners, modes, times, xattrs, hard links and symlinks included. The stager
itself, on a real engine: tests/faults/test_staging.py."""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from salvage.crane import staging

pytestmark = pytest.mark.skipif(
    not shutil.which("rsync") or os.geteuid() != 0, reason="needs rsync, and root (owners)"
)


def _script(text: str, tmp: Path) -> str:
    """The stager's script with its paths moved under `tmp`."""
    return (
        text.replace("/source/", f"{tmp}/source/")
        .replace("/stage/", f"{tmp}/stage/")
        .replace("/tmp/salvage-", f"{tmp}/salvage-")
    )


def _run(text: str, tmp: Path, *args: str, path: str = "") -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=f"{path}:{os.environ['PATH']}" if path else os.environ["PATH"])
    return subprocess.run(
        ["sh", "-c", _script(text, tmp), "sh", *args], capture_output=True, text=True, env=env
    )


def manifest(root: Path) -> dict:
    """Per path: mode, owner, mtime, xattrs, link target, size, sha256, hard-link group."""
    found, inodes = {}, {}
    for path in sorted([root, *root.rglob("*")]):
        info = os.lstat(path)
        entry = [info.st_mode, info.st_uid, info.st_gid]
        if path.is_symlink():
            entry.append(os.readlink(path))
        else:
            entry += [
                info.st_mtime_ns,
                *sorted((a, os.getxattr(path, a)) for a in os.listxattr(path)),
            ]
        if path.is_file() and not path.is_symlink():
            entry += [info.st_size, hashlib.sha256(path.read_bytes()).hexdigest()]
            entry.append(inodes.setdefault(info.st_ino, str(path.relative_to(root))))
        found[str(path.relative_to(root))] = entry
    return found


def _fill(root: Path, chance: random.Random) -> None:
    for d in range(4):
        sub = root / f"d{d}" / "sub"
        sub.mkdir(parents=True)
        for f in range(4):
            (root / f"d{d}" / f"f{f}").write_bytes(chance.randbytes(chance.choice([0, 9, 70000])))
        (sub / "x").write_bytes(b"x")
    os.link(root / "d0/f0", root / "d1/hard")
    os.symlink("d0/f1", root / "link")


def _change(root: Path, chance: random.Random) -> str:
    """One change of a kind a copy can miss; its name."""
    files = [p for p in root.rglob("*") if p.is_file() and not p.is_symlink()]
    dirs = [p for p in root.rglob("*") if p.is_dir() and not p.is_symlink()]
    kind = chance.choice(
        "same append delete deltree rename renamedir filetodir dirtofile link unlink"
        " chmod chown xattr relink deep".split()
    )
    try:
        if kind == "same" and files:  # size and mtime kept: only the ctime says so
            path = chance.choice(files)
            before, data = os.stat(path), bytearray(path.read_bytes() or b"\0")
            data[0] ^= 0xFF
            path.write_bytes(bytes(data))
            os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
        elif kind == "append" and files:
            with open(chance.choice(files), "ab") as out:
                out.write(b"+")
        elif kind == "delete" and files:
            chance.choice(files).unlink()
        elif kind == "deltree" and dirs:
            shutil.rmtree(chance.choice(dirs))
        elif kind == "rename" and files:
            path = chance.choice(files)
            path.rename(path.with_name(path.name + "-moved"))
        elif kind == "renamedir" and dirs:
            path = chance.choice(dirs)
            path.rename(path.with_name(path.name + "-moved"))
        elif kind == "filetodir" and files:
            path = chance.choice(files)
            path.unlink()
            path.mkdir()
            (path / "inside").write_bytes(b"i")
        elif kind == "dirtofile" and dirs:
            path = chance.choice(dirs)
            shutil.rmtree(path)
            path.write_bytes(b"a file now")
        elif kind == "link" and files:
            path = chance.choice(files)
            os.link(path, path.with_name(path.name + "-link"))
        elif kind == "unlink":
            linked = [p for p in files if os.stat(p).st_nlink > 1]
            if linked:
                chance.choice(linked).unlink()
        elif kind == "chmod" and files:
            os.chmod(chance.choice(files), chance.choice([0o600, 0o755, 0o444]))
        elif kind == "chown" and files:
            os.chown(chance.choice(files), chance.randint(1, 3000), chance.randint(1, 3000))
        elif kind == "xattr" and files:
            os.setxattr(chance.choice(files), "user.salvage", chance.randbytes(4))
        elif kind == "relink":
            (root / "link").unlink(missing_ok=True)
            os.symlink(chance.choice(["d0/f2", "nowhere", "d3"]), root / "link")
        elif kind == "deep" and dirs:
            deep = chance.choice(dirs) / "new" / "deeper"
            deep.mkdir(parents=True, exist_ok=True)
            (deep / "n").write_bytes(chance.randbytes(100))
    except OSError:
        pass  # (gone under an earlier change)
    return kind


def _volume(tmp: Path, chance: random.Random) -> Path:
    source = tmp / "source/0"
    _fill(source, chance)
    (tmp / "stage/0").mkdir(parents=True)
    time.sleep(1.1)  # older than the live copy, to the second (a margin of 0 below)
    return source


@pytest.mark.parametrize("seed", range(12))
def test_a_volume_changed_after_its_live_copy_is_synced_exactly(tmp_path, seed):
    chance = random.Random(seed)
    source = _volume(tmp_path, chance)
    assert _run(staging.PRESYNC, tmp_path, "0", "0").returncode == 0
    changes = [_change(source, chance) for _ in range(chance.randint(1, 8))]
    done = _run(staging.SYNC, tmp_path, "0")
    assert done.returncode == 0, done.stderr
    assert manifest(tmp_path / "stage/0") == manifest(source), changes


def _shim(tmp: Path, name: str, script: str) -> str:
    """A command `name` first on PATH; the directory."""
    bin_ = tmp / "bin"
    bin_.mkdir(exist_ok=True)
    (bin_ / name).write_text(f"#!/bin/sh\n{script}\n")
    (bin_ / name).chmod(0o755)
    return str(bin_)


def test_nothing_changed_after_a_whole_live_copy_runs_no_rsync(tmp_path):
    source = _volume(tmp_path, random.Random(1))
    assert _run(staging.PRESYNC, tmp_path, "0", "0").returncode == 0
    calls = tmp_path / "rsync-calls"
    shim = _shim(tmp_path, "rsync", f'echo "$@" >> {calls}; exec /usr/bin/rsync "$@"')
    assert _run(staging.SYNC, tmp_path, "0", path=shim).returncode == 0
    assert not calls.exists()
    assert manifest(tmp_path / "stage/0") == manifest(source)


def test_a_live_copy_that_failed_is_made_whole_while_the_containers_are_down(tmp_path):
    source = _volume(tmp_path, random.Random(2))
    shim = _shim(tmp_path, "cp", "exit 1")  # the live copy fails (nothing changes after)
    assert _run(staging.PRESYNC, tmp_path, "0", "0", path=shim).returncode == 0
    assert _run(staging.SYNC, tmp_path, "0").returncode == 0
    assert manifest(tmp_path / "stage/0") == manifest(source)


def test_a_clock_gone_back_since_the_live_copy_copies_everything_again(tmp_path):
    """Files changed with the clock back can have ctimes before the live copy began."""
    source = _volume(tmp_path, random.Random(3))
    assert _run(staging.PRESYNC, tmp_path, "0", "0").returncode == 0
    (tmp_path / "stage/0/d0/f1").write_bytes(b"what the ctimes would not show")
    past = _shim(tmp_path, "date", "echo 1000000000")
    assert _run(staging.SYNC, tmp_path, "0", path=past).returncode == 0
    assert manifest(tmp_path / "stage/0") == manifest(source)
