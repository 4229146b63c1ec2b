"""A booted Debian (12 or 13) with a real systemd, logind, dbus and journald, in a container on the
test engine, with salvage installed the way a package would put it: the source package in
/usr/lib/python3/dist-packages, /usr/bin/salvage, the units, the generator.

Its image comes from debootstrap (Debian's own python3-docker, -click, -dbus-next,
-sdnotify), of the host's release or another (Debian 13 beside 12), made once per machine and
imported once per engine. salvage inside talks to the same engine through
the mounted socket.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
import time
import uuid
from typing import Dict, Tuple

from support import distro
from support.debian import imported, rootfs
from support.harness import ROOT

PACKAGES = (
    "systemd",
    "systemd-sysv",
    "dbus",
    "python3",
    "python3-docker",
    "python3-click",
    "python3-dbus-next",
    "python3-sdnotify",
)
WRAPPER = "#!/usr/bin/python3\nfrom salvage.cli import main\n\nmain()\n"


def ensure_image(docker_host: str, release: str = "") -> str:
    """The booted-systemd image of `release` (the host's by default) on this engine: a
    debootstrapped root made once per machine (support.debian.rootfs), imported once per
    engine. Its tag names the release and a digest of the packages."""
    release = release or distro.suite()
    digest = hashlib.sha256(" ".join(PACKAGES).encode()).hexdigest()[:12]
    image = f"salvage-test/systemd-e2e:{release}-{digest}"
    return imported(docker_host, image, rootfs(PACKAGES, release), 'CMD ["/sbin/init"]')


def _tar(files: Dict[str, Tuple[bytes, int]]) -> bytes:
    """An archive of path -> (content, mode), for put_archive (docker cp)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as archive:
        for path, (content, mode) in files.items():
            info = tarfile.TarInfo(path.lstrip("/"))
            info.size, info.mode, info.mtime = len(content), mode, int(time.time())
            archive.addfile(info, io.BytesIO(content))
    return out.getvalue()


def installed_files(config: str) -> Dict[str, Tuple[bytes, int]]:
    """What a package would install, plus the configuration."""
    files = {}
    for source in sorted((ROOT / "salvage").rglob("*.py")):
        target = f"/usr/lib/python3/dist-packages/{source.relative_to(ROOT)}"
        files[target] = (source.read_bytes(), 0o644)
    files["/usr/bin/salvage"] = (WRAPPER.encode(), 0o755)
    for unit in ("salvage.service", "salvage@.service", "salvage@.timer"):
        files[f"/usr/lib/systemd/system/{unit}"] = ((ROOT / "systemd" / unit).read_bytes(), 0o644)
    generator = (ROOT / "systemd/salvage-generator").read_bytes()
    files["/usr/lib/systemd/system-generators/salvage-generator"] = (generator, 0o755)
    files["/etc/salvage/salvage.toml"] = (config.encode(), 0o600)
    return files


class SystemdContainer:
    """Started with what systemd needs in a container here (--privileged is refused)."""

    def __init__(self, api, image: str, docker_socket: str) -> None:
        self.api = api
        self.name = f"salvage-e2e-{uuid.uuid4().hex[:8]}"
        host_config = api.create_host_config(
            cap_add=["SYS_ADMIN"],
            security_opt=["seccomp=unconfined", "apparmor=unconfined"],
            binds=["/sys/fs/cgroup:/sys/fs/cgroup:rw", f"{docker_socket}:/run/docker.sock"],
            tmpfs={"/run": "", "/run/lock": ""},
            network_mode="none",
        )
        self.id = api.create_container(
            image, ["/sbin/init"], name=self.name, host_config=host_config, tty=True
        )["Id"]

    def put(self, files: Dict[str, Tuple[bytes, int]]) -> None:
        self.api.put_archive(self.id, "/", _tar(files))

    def start(self, timeout: float = 120) -> None:
        self.api.start(self.id)
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            state = self.sh("systemctl is-system-running")[1].strip()
            if state in ("running", "degraded"):
                return
            time.sleep(0.5)
        raise RuntimeError(
            f"systemd did not finish booting ({state}):\n"
            + self.sh("systemctl --failed --no-pager")[1]
        )

    def sh(self, command: str, timeout: float = 300) -> Tuple[int, str]:
        """A shell command inside; its exit code and output (stdout and stderr)."""
        exec_id = self.api.exec_create(
            self.id,
            ["timeout", str(int(timeout)), "sh", "-c", command],
            environment={"SYSTEMD_COLORS": "0"},
        )["Id"]
        output = self.api.exec_start(exec_id).decode("utf-8", errors="replace")
        return self.api.exec_inspect(exec_id)["ExitCode"], output

    def remove(self) -> None:
        self.api.remove_container(self.id, force=True)
