"""A booted Debian 12 with a real systemd, logind, dbus and journald, in a container on the
test engine, with salvage installed the way a package would put it: the source package in
/usr/lib/python3/dist-packages, /usr/bin/salvage, the units, the generator.

Its image comes from debootstrap (Debian's own python3-docker, -click, -dbus-next,
-sdnotify) and is built once per engine: it is tagged with a digest of its recipe and
reused while the recipe stays the same. salvage inside talks to the same engine through
the mounted socket.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
import uuid
from pathlib import Path
from typing import Dict, Tuple

from support import distro
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


def image_name(recipe) -> str:
    """Tagged with a digest of its recipe (release, mirror, packages)."""
    return (
        f"salvage-test/systemd-e2e:{distro.suite()}-"
        + hashlib.sha256(" ".join(recipe).encode()).hexdigest()[:12]
    )


def ensure_image(api, docker_host: str) -> str:
    """The image's tag; built first if the engine does not have it (a few minutes)."""
    base = Path(tempfile.mkdtemp(prefix="salvage-debootstrap-"))
    rootfs = base / "rootfs"
    recipe = distro.debootstrap_args(PACKAGES, rootfs)
    image = image_name(recipe[:-2] + recipe[-1:])  # the recipe without its scratch path
    if api.images(name=image):
        shutil.rmtree(base)
        return image
    if os.geteuid() != 0 or not shutil.which("debootstrap"):
        shutil.rmtree(base)
        raise RuntimeError(
            "building the systemd image needs root and debootstrap"
            " (scripts/install-deps installs it)"
        )
    try:
        done = subprocess.run(recipe, capture_output=True, text=True, timeout=1800)
        if done.returncode != 0:
            raise RuntimeError(f"debootstrap failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
        env = dict(os.environ, DOCKER_HOST=docker_host)
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        subprocess.run(
            ["docker", "import", "-c", 'CMD ["/sbin/init"]', "-", image],
            stdin=tar.stdout,
            env=env,
            check=True,
            capture_output=True,
        )
        tar.stdout.close()
        if tar.wait() != 0:
            raise RuntimeError("tar of the debootstrap root failed")
    finally:
        _unmount_under(rootfs)
        shutil.rmtree(base, ignore_errors=True)
    return image


def _unmount_under(path: Path) -> None:
    """debootstrap mounts /proc and /sys into the root it builds; a failed run may leave
    them mounted, and nothing under them may be deleted."""
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    for mount in sorted((m for m in mounts if m.startswith(f"{path}/")), reverse=True):
        subprocess.run(["umount", "-l", mount], check=False)


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
