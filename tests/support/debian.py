"""A Debian-family image for the tests (the host's own release, from the mirror its apt
uses), made with debootstrap (no registry needed): GNU tar for the tar crane's full
fidelity and zstd for its default compression, restic and jq for the restic crane, rsync
for staging's live copy.

debootstrap runs once per machine (its result is cached as a tarball, support.cache); the
tarball is imported once per engine.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from support import distro
from support.cache import CACHE, locked

PACKAGES = ("restic", "jq", "zstd", "rsync")


def image_name() -> str:
    """Named after its packages too: an engine that imported an older set imports this one."""
    return f"salvage-test/debian:{distro.suite()}-{'-'.join(PACKAGES)}"


def rootfs(packages=PACKAGES, release: str = "") -> Path:
    """The debootstrapped root of `release` (the host's by default) with `packages`, as a
    tarball, made once per machine (the first worker to ask makes it, the others wait)."""
    release = release or distro.suite()
    tarball = CACHE / f"{release}-minbase-{'-'.join(packages)}.tar"
    with locked(str(tarball)):
        if tarball.exists():
            return tarball
        if not shutil.which("debootstrap"):
            raise RuntimeError("debootstrap is not installed: run `make deps`")
        work = Path(tempfile.mkdtemp(prefix="salvage-debootstrap-", dir=CACHE))
        try:
            done = subprocess.run(
                distro.debootstrap_args(packages, work / "root", release),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            if done.returncode != 0:
                raise RuntimeError(f"debootstrap of {release} failed:\n{done.stdout[-3000:]}")
            # The downloaded packages and lists: a third of the root, and no test needs them.
            for leftover in ("var/cache/apt/archives", "var/lib/apt/lists"):
                for path in (work / "root" / leftover).glob("*"):
                    if path.is_file():
                        path.unlink()
            partial = tarball.with_suffix(".partial")
            with open(partial, "wb") as out:
                subprocess.run(["tar", "-C", str(work / "root"), "-c", "."], check=True, stdout=out)
            partial.rename(tarball)
        finally:
            _unmount_under(work / "root")
            shutil.rmtree(work, ignore_errors=True)
    return tarball


def _unmount_under(path: Path) -> None:
    """debootstrap mounts /proc and /sys into the root it builds; a failed run may leave
    them mounted, and nothing under them may be deleted."""
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    for mount in sorted((m for m in mounts if m.startswith(f"{path}/")), reverse=True):
        subprocess.run(["umount", "-l", mount], check=False)


def imported(docker_host: str, image: str, tarball: Path, *changes: str) -> str:
    """`image` on the engine, imported from `tarball` (with `docker import -c` `changes`)
    unless the engine has it: once per engine, even with workers sharing it."""
    env = dict(os.environ, DOCKER_HOST=docker_host)
    with locked(f"{docker_host} {image}"):
        found = subprocess.run(["docker", "image", "inspect", image], env=env, capture_output=True)
        if found.returncode != 0:
            with open(tarball, "rb") as stdin:
                subprocess.run(
                    ["docker", "import", *(f"--change={c}" for c in changes), "-", image],
                    stdin=stdin,
                    env=env,
                    check=True,
                    stdout=subprocess.DEVNULL,
                )
    return image


def debian_image(docker_host: str) -> str:
    return imported(docker_host, image_name(), rootfs())


RESTIC_CRANE = "salvage-test/crane-restic:latest"
GNU_TAR_CRANE = "salvage-test/crane-tar-gnu:latest"  # GNU tar: the tar crane's full fidelity


def crane_image(docker_host: str, crane: str, tag: str) -> str:
    """salvage's reference `crane` ("tar", "restic": salvage/crane/images) built on this
    image, tagged `tag`."""
    root = Path(__file__).resolve().parents[2]
    subprocess.run(
        [
            "docker",
            "build",
            "-q",
            "--build-arg",
            f"BASE={debian_image(docker_host)}",
            "-t",
            tag,
            str(root / "salvage/crane/images" / crane),
        ],
        check=True,
        env=dict(os.environ, DOCKER_HOST=docker_host),
        stdout=subprocess.DEVNULL,
    )
    return tag


def use_reference_cranes(salvage, crane: str, tmp_path, state, tar: str, tar_env: str = ""):
    """`salvage`'s config: its tide on the reference `crane`, the tar one being `tar`, the
    restic one RESTIC_CRANE with a password file in `tmp_path`; the state in `state`."""
    password = tmp_path / "restic-password"
    password.write_text("correct horse battery staple")
    password.chmod(0o600)
    salvage.write_config(
        f"""
        machine = "testhost"
        state_directory = "{state}"
        [tides.{salvage.tide}]
        crane = "{crane}"
        [cranes.tar]
        image = "{tar}"
        pull = "never"
        mounts = {{ "@BACKUPS@" = "/salvage/target" }}
        env = {{ {tar_env} }}
        [cranes.restic]
        image = "{RESTIC_CRANE}"
        pull = "never"
        mounts = {{ "@BACKUPS@" = "/salvage/target" }}
        secrets = {{ RESTIC_PASSWORD = "{password}" }}
        """
    )
