"""The Python side of fallback.macros: what Fedora's pyproject-rpm-macros do, as far as a
smoke build of salvage needs, with Debian's python3 (python3-installer, -packaging).

    buildrequires                              python3dist() build dependencies
    wheel WHEELDIR                             build the wheel (PEP 517)
    install WHEELDIR ROOT SITELIB BINDIR       install it under ROOT, Fedora's layout
    save-files ROOT SITELIB LIST MODULE...     the %files lines for the modules
    check-import MODULE...                     import each module
"""

import importlib
import sys
from pathlib import Path

import tomllib


def _pyproject() -> dict:
    with open("pyproject.toml", "rb") as stream:
        return tomllib.load(stream)


def buildrequires() -> None:
    from packaging.requirements import Requirement

    project = _pyproject()
    for text in project["build-system"]["requires"] + project["project"]["dependencies"]:
        requirement = Requirement(text)
        if requirement.marker is None or requirement.marker.evaluate():
            name = requirement.name.lower()
            for spec in requirement.specifier or [None]:
                print(f"python3dist({name})" + (f" {spec.operator} {spec.version}" if spec else ""))


def wheel(wheeldir: str) -> None:
    backend = importlib.import_module(_pyproject()["build-system"]["build-backend"])
    Path(wheeldir).mkdir(parents=True, exist_ok=True)
    print(backend.build_wheel(wheeldir))


def install(wheeldir: str, root: str, sitelib: str, bindir: str) -> None:
    # Debian's sysconfig sends prefix /usr to /usr/local: give the scheme's paths outright.
    from installer import install as install_wheel
    from installer.destinations import SchemeDictionaryDestination
    from installer.sources import WheelFile

    scheme = {"purelib": sitelib, "platlib": sitelib, "scripts": bindir, "data": "/usr"}
    destination = SchemeDictionaryDestination(
        scheme, interpreter=sys.executable, script_kind="posix", destdir=root
    )
    for path in sorted(Path(wheeldir).glob("*.whl")):
        with WheelFile.open(path) as source:
            install_wheel(source, destination, {"INSTALLER": b"rpm\n"})


def save_files(root: str, sitelib: str, listing: str, *modules: str) -> None:
    found = Path(root + sitelib)
    lines = [f"{sitelib}/{module}/" for module in modules]
    lines += [f"{sitelib}/{info.name}/" for info in sorted(found.glob("*.dist-info"))]
    Path(listing).write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")


def check_import(*modules: str) -> None:
    for module in modules:
        importlib.import_module(module)


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    {
        "buildrequires": buildrequires,
        "wheel": wheel,
        "install": install,
        "save-files": save_files,
        "check-import": check_import,
    }[command](*args)
