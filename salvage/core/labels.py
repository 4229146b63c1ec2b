"""The `salvage.*` container labels: parsing and volume-name resolution (pure).

The label names are the original tool's, so existing compose files keep working:

    salvage.tide.<tide>=<vol>,g:<global vol>,...
    salvage.action=stop|pause|ignore
    salvage.command.pre / salvage.command.post
    salvage.command.exitcode=stop|ignore|1,3-5
    salvage.user
    salvage.exclude=true (on a container or a volume: never back it up)

A tide label's entry that starts with "/" names a bind mount by its destination inside the
labelled container (`salvage.tide.daily=db,/config`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Dict, FrozenSet, List, Mapping, Optional, Set, Tuple

from salvage.core.model import Container, Host, Problem

TIDE_PREFIX = "salvage.tide."
ACTION = "salvage.action"
PRE = "salvage.command.pre"
POST = "salvage.command.post"
EXITCODE = "salvage.command.exitcode"
USER = "salvage.user"
EXCLUDE = "salvage.exclude"
KNOWN = (ACTION, PRE, POST, EXITCODE, USER, EXCLUDE)
FLAGS = ("true", "false")
DUMP_PREFIX = "salvage.dump"  # salvage.dump* labels: checked by salvage.core.dumps

ACTIONS = ("stop", "pause", "ignore")
GLOBAL_PREFIX = "g:"
# Docker's own rule for volume names: no slash, so never a path.
VOLUME_NAME = "[a-zA-Z0-9][a-zA-Z0-9_.-]*"
_VOLUME_NAME = re.compile(VOLUME_NAME)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Set by salvage on its own crane containers, so that leftovers can be found.
CRANE = "salvage.crane"
CRANE_TIDE = "salvage.crane.tide"
CRANE_VOLUME = "salvage.crane.volume"
RUN = "salvage.run"
# The state directory of the salvage that made it: recovery removes only its own cranes,
# never those of another salvage (another state directory) working on the same engine.
INSTANCE = "salvage.instance"
# On the scratch volume a restore fills before it touches its target: the restore's run id.
SCRATCH = "salvage.scratch"
# On a volume `salvage restore --all` created: "<machine>/<volume>" whose snapshot fills it.
# A rerun tells a volume it made (finished, or empty: to fill again) from someone else's.
RESTORED = "salvage.restored"
# On a stage volume (salvage.crane.staging): the volume it is a copy of; on a group's
# stager: the volumes it copies, separated by spaces.
STAGE = "salvage.stage"
# The names of salvage's own volumes, a prefix and 12 hex digits: a restore's scratch volume
# (of its run) and a stage. A socket proxy can allow removing these and no other
# (proxy-config); selection never backs one up.
SCRATCH_PREFIX = "salvage-restore-"
STAGE_PREFIX = "salvage-stage-"
# The crane API version a crane image declares (LABEL in its Dockerfile).
CRANE_API = "salvage.crane.api"
# The tide-wide actions a crane image offers, e.g. "init retention" (docs/crane-interface.md).
CRANE_ACTIONS = "salvage.crane.actions"
CRANE_LABELS = (CRANE, CRANE_TIDE, CRANE_VOLUME, RUN, INSTANCE, CRANE_API, CRANE_ACTIONS, STAGE)


def where(container: Container, label: str) -> str:
    return f'container "{container.name}": label {label}'


@dataclass(frozen=True)
class ExitCodePolicy:
    """Which exit codes of a pre/post command abort the backup of its group."""

    text: str = "stop"
    codes: Optional[FrozenSet[int]] = None  # None: every non-zero code aborts

    def aborts(self, code: int) -> bool:
        if self.text == "ignore":
            return False
        if self.codes is None:
            return code != 0
        return code in self.codes


def parse_exit_policy(text: str) -> ExitCodePolicy:
    """`stop`, `ignore`, or a list of codes and ranges such as `1,3-5`; ValueError if not."""
    text = text.strip()
    if text in ("stop", "ignore"):
        return ExitCodePolicy(text)
    codes: Set[int] = set()
    for item in text.split(","):
        item = item.strip()
        low, sep, high = item.partition("-")
        if not low.isdigit() or (sep and not high.isdigit()):
            raise ValueError(f'"{text}" is not stop, ignore, or a list of codes like 1,3-5')
        first, last = int(low), int(high) if sep else int(low)
        if first > last or last > 255:
            raise ValueError(f'"{item}" is not a range of exit codes (0-255, low-high)')
        codes.update(range(first, last + 1))
    return ExitCodePolicy(text, frozenset(codes))


@dataclass(frozen=True)
class Settings:
    """How one container is put into a safe state while its volumes are backed up."""

    action: str = "stop"
    pre: Optional[str] = None
    post: Optional[str] = None
    exit_policy: ExitCodePolicy = ExitCodePolicy()
    user: Optional[str] = None


def parse_settings(container: Container) -> Tuple[Settings, List[Problem]]:
    labels = container.labels
    problems: List[Problem] = []
    pre = labels.get(PRE) or None
    post = labels.get(POST) or None
    # Without commands the safe default is to stop; with them, the commands are the safety.
    action = labels.get(ACTION, "ignore" if (pre or post) else "stop").strip()
    if action not in ACTIONS:
        problems.append(
            Problem(where(container, ACTION), f'"{action}" is not one of {", ".join(ACTIONS)}')
        )
        action = "stop"
    policy = ExitCodePolicy()
    if EXITCODE in labels:
        try:
            policy = parse_exit_policy(labels[EXITCODE])
        except ValueError as error:
            problems.append(Problem(where(container, EXITCODE), str(error)))
    if labels.get(EXCLUDE, "false").strip().lower() not in FLAGS:
        problems.append(
            Problem(where(container, EXCLUDE), f'"{labels[EXCLUDE]}" is not true or false')
        )
    user = labels.get(USER)
    if user is not None and not user.strip():
        problems.append(Problem(where(container, USER), "is empty"))
    for label in labels:
        if label.startswith("salvage.") and not label.startswith(TIDE_PREFIX):
            if (
                label not in KNOWN
                and label not in CRANE_LABELS
                and not (label == DUMP_PREFIX or label.startswith(DUMP_PREFIX + "."))
            ):
                problems.append(Problem(where(container, label), "is not a salvage label"))
    settings = Settings(action, pre, post, policy, user.strip() if user else None)
    return settings, problems


@dataclass(frozen=True)
class VolumeRef:
    """One entry of a `salvage.tide.<tide>` label, as written."""

    container: Container
    tide: str
    text: str

    @property
    def label(self) -> str:
        return TIDE_PREFIX + self.tide

    @property
    def is_global(self) -> bool:
        return self.text.startswith(GLOBAL_PREFIX)

    @property
    def is_bind(self) -> bool:
        """A bind mount, named by its destination inside the labelled container."""
        return self.text.startswith("/")


def excluded(labels: Mapping[str, str]) -> bool:
    """salvage.exclude=true on a container or a volume."""
    return labels.get(EXCLUDE, "").strip().lower() == "true"


def destination_ok(text: str) -> bool:
    parts = text.split("/")
    return text.startswith("/") and ".." not in parts and not _CONTROL.search(text)


def tide_refs(container: Container) -> Tuple[Dict[str, List[VolumeRef]], List[Problem]]:
    """The volume references per tide named in a container's labels."""
    refs: Dict[str, List[VolumeRef]] = {}
    problems: List[Problem] = []
    for label, value in container.labels.items():
        if not label.startswith(TIDE_PREFIX):
            continue
        tide = label[len(TIDE_PREFIX) :]
        if not tide:
            problems.append(Problem(where(container, label), "names no tide"))
            continue
        entries = [item.strip() for item in value.split(",")]
        if not any(entries):
            problems.append(Problem(where(container, label), "names no volume"))
            continue
        for entry in entries:
            if entry.startswith("/"):
                if not destination_ok(entry):
                    problems.append(Problem(where(container, label), f'"{entry}" is not a path'))
                else:
                    refs.setdefault(tide, []).append(VolumeRef(container, tide, entry))
                continue
            name = entry[len(GLOBAL_PREFIX) :] if entry.startswith(GLOBAL_PREFIX) else entry
            if not _VOLUME_NAME.fullmatch(name):
                problems.append(Problem(where(container, label), f'"{entry}" is not a volume name'))
                continue
            refs.setdefault(tide, []).append(VolumeRef(container, tide, entry))
    return refs, problems


def resolve(ref: VolumeRef, host: Host) -> Tuple[Optional[str], Optional[Problem]]:
    """The real volume name a reference means, or the problem why there is none.

    `g:name` is a volume's real name. A bare name is the volume's name inside the labelling
    container's compose project (the `com.docker.compose.volume` label); on a container
    outside any compose project, a bare name is the real name.
    """
    container = ref.container
    if ref.is_global or container.project is None:
        name = ref.text[len(GLOBAL_PREFIX) :] if ref.is_global else ref.text
        if name in host.volumes:
            return name, None
        return None, Problem(where(container, ref.label), f'no volume named "{name}"')
    for volume in host.volumes.values():
        if volume.project == container.project and volume.compose_name == ref.text:
            return volume.name, None
    return None, Problem(
        where(container, ref.label),
        f'no volume "{ref.text}" in compose project "{container.project}"'
        f' (use "g:{ref.text}" for a volume outside the project)',
    )
