"""Against the real engine: whatever the labels on a container, `salvage run` ends with an
exit code and one-line messages, never a traceback, and the container as it was."""

from __future__ import annotations

import re
import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.harness import Salvage, Stack, events

KEYS = st.sampled_from(
    [
        "salvage.tide.T",
        "salvage.tide.",
        "salvage.action",
        "salvage.command.pre",
        "salvage.command.post",
        "salvage.command.exitcode",
        "salvage.user",
        "salvage.oops",
    ]
)
VALUES = st.one_of(
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=20),
    st.sampled_from(
        [
            "g:VOL",
            "VOL",
            "g:VOL,,",
            "stop",
            "pause",
            "ignore",
            "explode",
            "true",
            "exit 3",
            "1,3-5",
            "9-1",
            "nobody",
            "root",
        ]
    ),
)


@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.dictionaries(KEYS, VALUES, min_size=1, max_size=5))
def test_any_labels_never_crash_nor_change_a_container(
    api, docker_host, images, tmp_path_factory, labels
):
    tmp = tmp_path_factory.mktemp("labels")
    stack = Stack(api, docker_host, tmp)
    salvage = Salvage(docker_host, tmp, stack.tide)
    try:
        vol = stack.volume("data")
        labels = {
            key.replace("salvage.tide.T", f"salvage.tide.{stack.tide}"): value.replace("VOL", vol)
            for key, value in labels.items()
        }
        name = stack.container("app", [vol], labels=labels)
        salvage.use_tar()
        before = stack.states()
        since = time.time()
        done = salvage("run", "--tide", stack.tide)
        assert done.returncode in (0, 1, 2), done.stderr
        assert "Traceback" not in done.stderr, done.stderr
        assert stack.states() == before
        backed_up = re.search(r"tide \S+: (\d+) volumes? backed up", done.stderr + done.stdout)
        if done.returncode == 2 and not (backed_up and int(backed_up.group(1))):
            # A label problem alone touches nothing. (A label such as "g:VOL," names one
            # good volume beside a bad entry: the good one is backed up, README "Labels".)
            assert not [e for e in events(api, since) if e[0] == name and e[1] != "exec_start"]
    finally:
        stack.cleanup()
