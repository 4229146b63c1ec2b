"""The distribution packages as `make deb` builds them (packaging/build), and what the tests
that install them in a booted Debian 12 (support/systemd_container.py) look at there."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Set

from support.harness import ROOT

# Left out of a file system snapshot: the kernel's, the runtime's, and scratch space.
NOT_SNAPSHOT = ("/proc", "/sys", "/dev", "/run", "/tmp")
# What the system itself changes meanwhile: the journal, dpkg's and systemd's bookkeeping.
SYSTEM_CHURN = ("/var/log/", "/var/lib/dpkg/", "/var/lib/systemd/", "/var/cache/")


def build_deb(directory: Path) -> Path:
    """packaging/build deb (with lintian), its build/ and dist/ in `directory`."""
    env = dict(os.environ, BUILD_DIR=str(directory / "build"), DIST_DIR=str(directory / "dist"))
    done = subprocess.run(
        [str(ROOT / "packaging/build"), "deb"], env=env, capture_output=True, text=True, timeout=900
    )
    if done.returncode != 0:
        raise RuntimeError(f"packaging/build deb failed:\n{done.stdout[-5000:]}{done.stderr}")
    (deb,) = (directory / "dist").glob("salvage_*_all.deb")
    return deb


def snapshot(box) -> Set[str]:
    """Every path on the container's root file system, but NOT_SNAPSHOT."""
    prune = " -o ".join(f"-path {path}" for path in NOT_SNAPSHOT)
    code, out = box.sh(f"find / -xdev \\( {prune} \\) -prune -o -print")
    assert code == 0, out
    return set(out.splitlines())


def left_behind(before: Set[str], after: Set[str]) -> Set[str]:
    """Paths that are new since `before`: anything of salvage's, and anything outside the
    system's own bookkeeping."""
    return {
        path for path in after - before if "salvage" in path or not path.startswith(SYSTEM_CHURN)
    }


def wait_inactive(box, unit: str, timeout: float = 180) -> str:
    """Wait until systemd has finished with the unit, its stop path included; its state."""
    deadline = time.monotonic() + timeout
    while True:
        state = box.sh(f"systemctl show -p ActiveState --value '{unit}'")[1].strip()
        if state in ("inactive", "failed"):
            return state
        if time.monotonic() > deadline:
            raise AssertionError(f"{unit} still {state}:\n" + journal(box, unit))
        time.sleep(0.1)


def journal(box, unit: str = "", *args: str) -> str:
    which = f"-u '{unit}'" if unit else ""
    return box.sh(f"journalctl --no-pager {which} {' '.join(args)}")[1]


def cursor(box) -> str:
    """The journal's current end, for `journalctl --after-cursor`."""
    out = box.sh("journalctl -n 0 --show-cursor --no-pager")[1]
    return out.strip().rsplit("-- cursor: ", 1)[1]
