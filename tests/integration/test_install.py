"""salvage installed from its wheel, as pip and pipx install it, far from any checkout: the
reference cranes' build contexts travel inside the package, and a missing reference crane
is built from them on first use, with no registry."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import zipfile

import pytest
from support.harness import BUSYBOX, ROOT

BUILD_OUTPUT = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    if importlib.util.find_spec("pip") is None:
        pytest.skip("this Python has no pip (make test's .venv has it)")
    tmp = tmp_path_factory.mktemp("wheel")
    shutil.copytree(ROOT, tmp / "src", ignore=BUILD_OUTPUT)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--disable-pip-version-check",
            "-w",
            str(tmp / "dist"),
            str(tmp / "src"),
        ],
        check=True,
        capture_output=True,
    )
    (built,) = (tmp / "dist").glob("salvage-*.whl")
    return built


def test_wheel_carries_the_reference_cranes(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for crane in ("tar", "restic"):
        assert f"salvage/crane/images/{crane}/Dockerfile" in names
        assert f"salvage/crane/images/{crane}/entrypoint.sh" in names


def test_installed_wheel_builds_a_missing_crane_from_its_own_files(wheel, stack, api, tmp_path):
    site = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--disable-pip-version-check",
            "--target",
            str(site),
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    image = f"salvage/crane-tar:wheel-{stack.prefix}"  # a tag of its own: nobody else's image
    vol = stack.volume("data")
    app = stack.container("app", [vol], labels={f"salvage.tide.{stack.tide}": f"g:{vol}"})
    config = tmp_path / "salvage.toml"
    config.write_text(
        f'machine = "wheel"\nstate_directory = "{tmp_path / "state"}"\n'
        f'[tides.{stack.tide}]\ncrane = "tar"\n'
        f'[cranes.tar]\nimage = "{image}"\nbase = "{BUSYBOX}"\npull = "never"\n'
        f'mounts = {{ "{tmp_path / "backups"}" = "/salvage/target" }}\n'
    )
    config.chmod(0o600)
    # Run from elsewhere, with only the installed wheel on the path: not the checkout's code.
    env = dict(stack.env, PYTHONPATH=str(site))
    env.pop("SALVAGE_CRANES_DIR", None)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "salvage", "-c", str(config), "run"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        context = os.path.join(site, "salvage", "crane", "images", "tar")
        assert f'crane "tar": building {image} from {context} (first use)' in done.stderr
        assert list((tmp_path / "backups" / "wheel" / vol).glob("*.tar.gz"))
        assert stack.state(app) == "running"
    finally:
        api.remove_image(image, force=True)
