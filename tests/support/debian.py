"""A Debian-family image for the tests (the host's own release, from the mirror its apt
uses), made with debootstrap (no registry needed): GNU tar for the tar crane's full
fidelity and zstd for its default compression, restic and jq for the restic crane, rsync
for staging's live copy.

debootstrap runs once per machine (its result is cached as a tarball); the tarball is
imported once per engine.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from support import distro

PACKAGES = ("restic", "jq", "zstd", "rsync")
CACHE = Path(os.environ.get("SALVAGE_TEST_CACHE", "/var/cache/salvage-tests"))


def image_name() -> str:
    """Named after its packages too: an engine that imported an older set imports this one."""
    return f"salvage-test/debian:{distro.suite()}-{'-'.join(PACKAGES)}"


def rootfs(packages=PACKAGES) -> Path:
    """The debootstrapped root with `packages` as a tarball, made once per machine."""
    tarball = CACHE / f"{distro.suite()}-minbase-{'-'.join(packages)}.tar"
    if tarball.exists():
        return tarball
    if not shutil.which("debootstrap"):
        raise RuntimeError("debootstrap is not installed: run `make deps`")
    CACHE.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="salvage-debootstrap-", dir=CACHE))
    try:
        subprocess.run(
            distro.debootstrap_args(packages, work / "root"),
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        partial = tarball.with_suffix(".partial")
        with open(partial, "wb") as out:
            subprocess.run(["tar", "-C", str(work / "root"), "-c", "."], check=True, stdout=out)
        partial.rename(tarball)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return tarball


def debian_image(docker_host: str) -> str:
    env = dict(os.environ, DOCKER_HOST=docker_host)
    image = image_name()
    found = subprocess.run(["docker", "image", "inspect", image], env=env, capture_output=True)
    if found.returncode != 0:
        with open(rootfs(), "rb") as tarball:
            subprocess.run(
                ["docker", "import", "-", image],
                stdin=tarball,
                env=env,
                check=True,
                stdout=subprocess.DEVNULL,
            )
    return image


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
