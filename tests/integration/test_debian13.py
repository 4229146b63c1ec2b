"""Debian 13 (trixie), the current stable: the unit tests pass on its own Python (3.13) and
its own libraries (python3-docker 7, click 8.1.8/8.2, ...), run as a user of that release
would run them, in a container debootstrapped from this machine's mirror (support/debian.py).

The package itself is tested booted on Debian 13 in test_packages_e2e.py.
"""

from __future__ import annotations

import pytest
from support import distro
from support.debian import imported, rootfs
from support.harness import ROOT

pytestmark = [pytest.mark.docker, pytest.mark.xdist_group("debian13")]

RELEASE = "trixie"
# The unit tests' imports from Debian's archive, and the tools some of them call (not
# promtool: the alert rules' tests need no Python library, and run on the host's).
# python3-cffi-backend: debootstrap cannot resolve the virtual package cryptography needs.
PACKAGES = (
    "python3",
    "python3-pytest",
    "python3-hypothesis",
    "python3-docker",
    "python3-click",
    "python3-dbus-next",
    "python3-sdnotify",
    "python3-prometheus-client",
    "python3-jsonschema",
    "python3-yaml",
    "apprise",
    "python3-cffi-backend",
    "systemd",
    "util-linux",
    "git",
)


def run(api, image: str, command: str) -> tuple:
    """`command` under sh in a container of `image` with the checkout read-only at /src,
    tini as PID 1 (as it would be in CI); its exit code and output."""
    created = api.create_container(
        image,
        ["sh", "-c", command],
        working_dir="/src",
        environment={"PYTHONDONTWRITEBYTECODE": "1", "LANG": "C.UTF-8"},
        host_config=api.create_host_config(
            binds=[f"{ROOT}:/src:ro"], init=True, network_mode="none"
        ),
    )
    try:
        api.start(created)
        code = api.wait(created, timeout=900)["StatusCode"]
        return code, api.logs(created).decode(errors="replace")
    finally:
        api.remove_container(created, force=True)


@pytest.fixture(scope="module")
def trixie(api, docker_host):
    if not distro.serves(RELEASE):
        pytest.skip(f"no Debian mirror for {RELEASE} among this host's apt sources")
    return imported(docker_host, f"salvage-test/unit:{RELEASE}", rootfs(PACKAGES, RELEASE))


def test_the_libraries_are_debian_13s_own(api, trixie):
    code, out = run(
        api,
        trixie,
        "python3 -c 'import sys, docker, click; print(sys.version_info[:2], docker.__version__)';"
        " . /etc/os-release; echo $VERSION_ID",
    )
    assert code == 0, out
    assert out.split("\n")[:2] == ["(3, 13) 7.1.0", "13"], out


def test_unit_tests_pass_on_debian_13s_own_python_and_libraries(api, trixie):
    # The checkout is read-only: git must be told it is safe, and pytest keeps no cache.
    code, out = run(
        api,
        trixie,
        "echo cpu time limit: $(ulimit -t); git config --global --add safe.directory /src &&"
        " python3 -m pytest -p no:cacheprovider -q -o addopts= tests/unit",
    )
    summary = out.strip().splitlines()[-1] if out.strip() else ""
    assert code == 0, out[-6000:]
    assert " passed" in summary and "failed" not in summary and "error" not in summary, summary
