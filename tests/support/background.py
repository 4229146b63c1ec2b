"""`salvage` started in the background, as systemd starts it: with the environment a test
gives it (NOTIFY_SOCKET, WATCHDOG_USEC, JOURNAL_STREAM, DBUS_SYSTEM_BUS_ADDRESS...), its
stderr in a file. Stopped by its own pid only."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

from support.harness import ROOT


class Background:
    def __init__(
        self, salvage, *args: str, env: Optional[dict] = None, journal: bool = False
    ) -> None:
        self.stderr_path = Path(tempfile.mkstemp(prefix="salvage-stderr-", dir=salvage.tmp)[1])
        full_env = dict(os.environ, DOCKER_HOST=salvage.host, PYTHONPATH=str(ROOT))
        for name in ("SALVAGE_CONFIG", "NOTIFY_SOCKET", "WATCHDOG_USEC", "JOURNAL_STREAM"):
            full_env.pop(name, None)
        if journal:  # stderr is "the journal": systemd names it so, by device and inode
            info = self.stderr_path.stat()
            full_env["JOURNAL_STREAM"] = f"{info.st_dev}:{info.st_ino}"
        full_env.update(env or {})
        with open(self.stderr_path, "wb") as stderr:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "salvage", "-c", str(salvage.config), *args],
                env=full_env,
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
        self.started = time.time()

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8")

    def wait(self, timeout: float = 120) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"salvage still ran after {timeout} s:\n{self.stderr}") from None
