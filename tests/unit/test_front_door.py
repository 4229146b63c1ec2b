"""What a newcomer's `sudo make demo`, `sudo make test` and `make deb` rest on: install-deps
asks the package manager for what each job needs and no more, and the repository names no
package repository host (the test images take the mirror from the machine's apt sources)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from urllib.parse import urlparse

import pytest
from support import distro
from support.harness import ROOT

ENGINE_AND_TEST_TOOLS = {
    "docker.io",
    "docker-compose",
    "busybox-static",
    "haproxy",
    "debootstrap",
    "python3-pytest",
    "python3-hypothesis",
    "python3-dbusmock",
    "systemd",
    "python3-docker",
}


def wants(kind: str) -> set:
    done = subprocess.run(
        [str(ROOT / "scripts/install-deps"), "--list", kind],
        capture_output=True,
        text=True,
        check=True,
    )
    return set(done.stdout.split())


def build_depends() -> set:
    """Build-Depends of packaging/debian/control, as package names apt installs."""
    control = (ROOT / "packaging/debian/control").read_text()
    field = re.search(r"^Build-Depends:\n((?:[ #].*\n)+)", control, re.M).group(1)
    names = {
        line.strip().rstrip(",").split()[0]
        for line in field.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    }
    provided_by = {"debhelper-compat": "debhelper", "dh-sequence-python3": "dh-python"}
    return {provided_by.get(name, name) for name in names}


def test_make_deb_needs_only_the_build_dependencies():
    deb = wants("deb")
    assert build_depends() <= deb
    assert deb - build_depends() == {"lintian"}
    assert not deb & ENGINE_AND_TEST_TOOLS


def test_the_demo_and_the_tests_install_what_they_run():
    assert {"docker.io", "docker-compose", "busybox-static", "python3-venv"} <= wants("demo")
    assert wants("deb") <= wants("demo")
    assert wants("demo") | wants("rpm") <= wants("test")


def test_no_pip_into_the_system_python():
    for path in ("Makefile", "scripts/install-deps", "scripts/demo", ".ci/run"):
        for line in (ROOT / path).read_text().splitlines():
            if re.search(r"\bpip\b.*\binstall\b", line) and not line.lstrip().startswith("#"):
                # only a virtual environment's own pip
                assert re.search(r"(VENV\)|/opt/salvage-demo)/bin/python -m pip", line), line


def test_sources_are_read_in_both_apt_formats(tmp_path):
    (tmp_path / "sources.list").write_text(
        "# deb http://old.example/debian bookworm main\n"
        "deb [arch=amd64 signed-by=/k.gpg] http://one.example/debian bookworm main contrib\n"
    )
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "x.sources").write_text(
        "Types: deb deb-src\nURIs: http://two.example/ubuntu\nSuites: noble noble-updates\n"
        "Components: main universe\n\nTypes: deb\nEnabled: no\nURIs: http://off.example/\n"
        "Suites: noble\nComponents: main\n"
    )
    found = distro.sources(tmp_path / "sources.list", tmp_path / "d")
    assert distro.mirror("bookworm", found) == distro.Source(
        "http://one.example/debian", ("bookworm",), ("main", "contrib")
    )
    assert distro.mirror("noble", found).components == ("main", "universe")
    assert "off.example" not in {urlparse(s.uri).hostname for s in found}


def test_no_package_repository_host_is_named_in_the_repository():
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: no list of tracked files")
    hosts = {urlparse(s.uri).hostname for s in distro.sources()} - {None}
    assert hosts, "this machine has no apt source to compare with"
    tracked = (
        subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True)
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, tracked):
        path = Path(ROOT, name)
        if path.is_file() and not path.is_symlink():
            text = path.read_bytes().decode(errors="replace")
            assert not [host for host in hosts if host in text], name
