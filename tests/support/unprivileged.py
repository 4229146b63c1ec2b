"""Running `salvage` as an unprivileged user (nobody, 65534:65534, no other groups), with the
system's Python and its own libraries: what a person without root sees."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Optional

from support.harness import ROOT

NOBODY = 65534
PYTHON = "/usr/bin/python3"  # the interpreter the tests run may sit in root's home


def why_not() -> Optional[str]:
    """Why these tests cannot run here; None when they can."""
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        return "needs root and setpriv to become nobody"
    probe = command(["-c", "import click, docker"], python_only=True)
    done = subprocess.run(probe, capture_output=True, timeout=60)
    if done.returncode != 0:
        return f"{PYTHON} cannot import salvage's libraries as nobody"
    return None


def command(args, python_only: bool = False) -> list:
    setpriv = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    return [*setpriv, PYTHON, *(args if python_only else ["-m", "salvage", *args])]


def run(*args: str, env: Optional[dict] = None) -> subprocess.CompletedProcess:
    """`salvage ARGS` as nobody, with this checkout's salvage."""
    full = dict(os.environ, PYTHONPATH=str(ROOT), **(env or {}))
    full.pop("SALVAGE_CONFIG", None)
    return subprocess.run(
        command(list(args)), env=full, capture_output=True, text=True, timeout=120, cwd="/"
    )


def shared_directory() -> Path:
    """A directory nobody may pass through (pytest's own tmp_path is root's alone)."""
    path = Path(tempfile.mkdtemp(prefix="salvage-nobody-"))
    path.chmod(0o755)
    return path


def config_for_nobody(directory: Path, text: str) -> Path:
    """A configuration nobody's group may read, and no one else (salvage warns otherwise)."""
    path = directory / "salvage.toml"
    path.write_text(text)
    os.chown(path, 0, NOBODY)
    path.chmod(0o640)
    return path
