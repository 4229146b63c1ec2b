"""A private Docker engine whose data root is a file system of its own, on a loop-mounted
file: a small one (a stage that does not fit), or XFS (reflinks), whatever the host's is."""

from __future__ import annotations

import shutil
import subprocess

from support.dockerd import PrivateDockerd


class LoopDockerd(PrivateDockerd):
    def __init__(self, fstype: str, megabytes: int, prefix: str = "salvage-loop-", **kw) -> None:
        super().__init__(prefix=prefix, **kw)
        self.fstype, self.megabytes = fstype, megabytes
        self.mounted = False

    def start(self) -> LoopDockerd:
        if not self.mounted:
            mkfs = f"mkfs.{self.fstype}"
            if not shutil.which(mkfs):
                raise RuntimeError(f"{mkfs} is not installed: run `make deps`")
            image, root = self.base / "fs.img", self.base / "root"
            with open(image, "wb") as out:
                out.truncate(self.megabytes << 20)
            subprocess.run([mkfs, "-q", str(image)], check=True, capture_output=True)
            root.mkdir()
            subprocess.run(["mount", "-o", "loop", str(image), str(root)], check=True)
            self.mounted = True
        super().start()
        return self

    def remove(self) -> None:
        self.stop()
        if self.mounted:
            subprocess.run(["umount", str(self.base / "root")], check=False)
            self.mounted = False
        super().remove()
