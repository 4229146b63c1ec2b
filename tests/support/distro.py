"""The host's own distribution release and the apt mirror it already uses, as a user's
machine has them: the test images are debootstrapped from these, so that no package
repository's host name lives in this repository.

SALVAGE_TEST_MIRROR overrides the mirror (a URI debootstrap takes).
"""

from __future__ import annotations

import glob
import os
from pathlib import Path
from typing import Iterator, List, NamedTuple, Tuple

OS_RELEASE = Path("/etc/os-release")
SOURCES_LIST = Path("/etc/apt/sources.list")
SOURCES_DIR = Path("/etc/apt/sources.list.d")


class Source(NamedTuple):
    uri: str
    suites: Tuple[str, ...]
    components: Tuple[str, ...]


def suite(os_release: Path = OS_RELEASE) -> str:
    """The release's code name (bookworm, noble, ...)."""
    for line in os_release.read_text().splitlines():
        key, _, value = line.partition("=")
        if key == "VERSION_CODENAME" and value.strip('"'):
            return value.strip('"')
    raise RuntimeError(f"{os_release} names no VERSION_CODENAME: set SALVAGE_TEST_MIRROR")


def serves(release: str, os_release: Path = OS_RELEASE) -> bool:
    """Whether debootstrap can fetch `release` here: the host's own, or any Debian release
    from a Debian host's mirror (or from SALVAGE_TEST_MIRROR)."""
    if os.environ.get("SALVAGE_TEST_MIRROR") or release == suite(os_release):
        return True
    fields = dict(line.partition("=")[::2] for line in os_release.read_text().splitlines())
    return fields.get("ID", "").strip('"') == "debian"


def _deb822(text: str) -> Iterator[Source]:
    """Stanzas of a .sources file (deb822): Types, URIs, Suites, Components, Enabled."""
    for stanza in text.split("\n\n"):
        fields: dict = {}
        for line in stanza.splitlines():
            if line.startswith("#") or ":" not in line or line[:1].isspace():
                continue
            key, _, value = line.partition(":")
            fields[key.strip().lower()] = value.split()
        if "deb" not in fields.get("types", []) or fields.get("enabled", ["yes"]) == ["no"]:
            continue
        for uri in fields.get("uris", []):
            yield Source(uri, tuple(fields.get("suites", [])), tuple(fields.get("components", [])))


def _one_line(text: str) -> Iterator[Source]:
    """Lines of sources.list: `deb [options] URI SUITE COMPONENT...`."""
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if not words or words[0] != "deb":
            continue
        words = words[1:]
        if words and words[0].startswith("["):
            while words and not words[0].endswith("]"):
                words = words[1:]
            words = words[1:]
        if len(words) >= 2:
            yield Source(words[0], (words[1],), tuple(words[2:]))


def sources(sources_list: Path = SOURCES_LIST, sources_dir: Path = SOURCES_DIR) -> List[Source]:
    found: List[Source] = []
    if sources_list.is_file():
        found += _one_line(sources_list.read_text())
    for path in sorted(glob.glob(str(sources_dir / "*.list"))):
        found += _one_line(Path(path).read_text())
    for path in sorted(glob.glob(str(sources_dir / "*.sources"))):
        found += _deb822(Path(path).read_text())
    return found


def mirror(release: str, found: List[Source]) -> Source:
    """The first source that serves `release` itself (not -updates or -security)."""
    override = os.environ.get("SALVAGE_TEST_MIRROR")
    if override:
        return Source(override, (release,), ("main",))
    for source in found:
        if release in source.suites and source.uri.startswith(("http://", "https://", "file:")):
            return source
    raise RuntimeError(
        f"no apt source for {release} in {SOURCES_LIST} or {SOURCES_DIR}: set SALVAGE_TEST_MIRROR"
    )


def debootstrap_args(packages, root: Path, release: str = "") -> List[str]:
    """debootstrap's command line for a minimal root with `packages` of `release`, by default
    this host's own. Another release of the host's distribution comes from the mirror that
    serves the host's (a Debian mirror serves every Debian release)."""
    source = mirror(suite(), sources())
    release = release or suite()
    components = ",".join(source.components or ("main",))
    return [
        "debootstrap",
        "--variant=minbase",
        f"--components={components}",
        f"--include={','.join(packages)}",
        release,
        str(root),
        source.uri,
    ]
