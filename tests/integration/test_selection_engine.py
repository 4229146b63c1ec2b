"""Selection and bind mounts on the real engine: `select = "all"` with its exclusions backs
up exactly what the plan says; a bind mount round-trips through a backup and restore; a
label naming a path no container bind-mounts is refused and touches nothing."""

from __future__ import annotations

import json
import time

from support.harness import BUSYBOX, events
from test_restore import FILL, _config, _in, _manifest, cranes  # noqa: F401 (a fixture)

EXCLUDE = "salvage.exclude"


def test_select_all_backs_up_exactly_what_the_plan_says(stack, salvage, api):
    p, tide = stack.prefix, stack.tide
    labelled, used, unused = stack.volume("labelled"), stack.volume("used"), stack.volume("unused")
    cache = stack.volume("cache")  # excluded by pattern
    marked = f"{p}-marked"  # excluded by its own label
    api.create_volume(marked, labels={EXCLUDE: "true"})
    stack.volumes.append(marked)
    private = stack.volume("private")  # excluded by the label on the container that uses it
    stack.container("labeller", [labelled], labels={f"salvage.tide.{tide}": f"g:{labelled}"})
    stack.container("user", [used, cache, marked])
    stack.container("secret", [private], labels={EXCLUDE: "true"})
    # An anonymous volume, as a Dockerfile's VOLUME or `docker run -v /data` makes one.
    anon_box = api.create_container(
        BUSYBOX,
        ["sleep", "3600"],
        name=f"{p}-anon",
        volumes=["/data"],
        host_config=api.create_host_config(network_mode="none"),
    )
    stack.containers.append(f"{p}-anon")
    api.start(anon_box)
    (anonymous,) = [m["Name"] for m in api.inspect_container(anon_box)["Mounts"]]
    stack.volumes.append(anonymous)
    # A compose service's bind mounts: a directory under the project's (in), a file (out).
    (stack.tmp / f"{p}web").mkdir()
    (stack.tmp / f"{p}web" / "site.conf").write_text("x")
    project = stack.compose(
        "web",
        f"""
        version: "2.4"
        services:
          web:
            image: {BUSYBOX}
            init: true
            network_mode: none
            command: sh -c 'echo page > /www/index.html; sleep 3600'
            volumes: [./www:/www, ./site.conf:/etc/site.conf]
        """,
    )
    www = "bind_" + str(stack.tmp / project / "www").strip("/").replace("/", "_")
    salvage.use_tar(tide=f'select = "all"\nexclude = ["{p}-c*"]')
    before = stack.states()

    (plan,) = salvage.plan("--tide", tide)
    reasons = {c["name"]: (c["selected"], c["reason"]) for c in plan["selection"]}
    mine = {name: why for name, why in reasons.items() if p in name or name == anonymous}
    assert mine == {
        www: (True, f'select = all: under compose project "{project}"\'s directory'),
        labelled: (True, f'label salvage.tide.{tide} on container "{p}-labeller"'),
        used: (True, "select = all"),
        unused: (True, "select = all"),
        cache: (False, f'excluded by pattern "{p}-c*"'),
        marked: (False, "excluded by label salvage.exclude on the volume"),
        private: (False, f'excluded by label salvage.exclude on container "{p}-secret"'),
        anonymous: (False, "anonymous (include_anonymous = false)"),
    }
    planned = {v for g in plan["groups"] for v in g["volumes"]}
    assert planned == {name for name, (selected, _) in reasons.items() if selected}
    text = salvage("plan", "--tide", tide).stdout
    assert f'    out {cache}: excluded by pattern "{p}-c*"' in text.splitlines()

    since = time.time()
    salvage("run", "--tide", tide, check_code=0)
    backed_up = set(salvage.archives())
    assert backed_up == planned  # every planned volume, and nothing else
    assert {labelled, used, unused, www} <= backed_up
    assert not {cache, marked, private, anonymous} & backed_up
    # The excluded container was never touched; the others are back as they were.
    assert not [a for n, a, _ in events(api, since) if n == f"{p}-secret"]
    assert stack.states() == before


def _bind_box(stack, api, name, binds, labels=None):
    """A running container with bind mounts (host path -> destination)."""
    created = api.create_container(
        BUSYBOX,
        ["sleep", "3600"],
        name=f"{stack.prefix}-{name}",
        labels=labels or {},
        host_config=api.create_host_config(
            binds=[f"{src}:{dst}" for src, dst in binds.items()], init=True, network_mode="none"
        ),
    )
    stack.containers.append(f"{stack.prefix}-{name}")
    api.start(created)
    return f"{stack.prefix}-{name}"


def test_a_bind_mount_round_trips_through_backup_and_restore(
    stack,
    salvage,
    api,
    cranes,  # noqa: F811 (the fixture)
    tmp_path,
):
    config = tmp_path / "app" / "config"
    config.mkdir(parents=True)
    _in(api, cranes, str(config), FILL.replace("200M", "2M"))
    before = _manifest(api, cranes, str(config))
    app = _bind_box(
        stack,
        api,
        "app",
        {str(config): "/config"},
        labels={f"salvage.tide.{stack.tide}": "/config"},
    )
    reader = _bind_box(stack, api, "reader", {str(config): "/etc/app"})
    _config(salvage, "tar", tmp_path)
    name = "bind_" + str(config).strip("/").replace("/", "_")

    (plan,) = salvage.plan()
    (group,) = plan["groups"]
    assert group["volumes"] == [name]
    assert sorted(s["container"] for s in group["containers"]) == sorted([app, reader])
    salvage("run", check_code=0)
    (archive,) = salvage.archives()[name]
    meta = json.loads(archive.with_name(archive.name.split(".")[0] + ".meta.json").read_text())
    assert (meta["kind"], meta["host_path"]) == ("bind", str(config))
    assert sorted(meta["containers"]) == sorted([app, reader])
    assert _manifest(api, cranes, str(config)) == before  # read-only: not one byte changed

    # Into a new directory: the same files, owners, modes, times and bytes.
    copy = tmp_path / "restored" / "config"
    salvage("restore", name, "--to", str(copy), check_code=0)
    assert _manifest(api, cranes, str(copy)) == before
    again = salvage("restore", name, "--to", str(copy))
    assert again.returncode == 1 and f"{copy} exists" in again.stderr

    # In place: refused without --force, then a safety backup first, the users back up.
    _in(api, cranes, str(config), "echo changed > /v/docs/a.txt; echo new > /v/extra")
    states = stack.states()
    refused = salvage("restore", name)
    assert refused.returncode == 1, refused.stderr
    assert f"{name} is the bind mount {config}: not refilling it without --force" in (
        refused.stderr
    )
    assert _in(api, cranes, str(config), "cat /v/extra") == "new\n"
    time.sleep(1)  # the safety backup is a snapshot of its own second
    salvage("restore", name, "--force", check_code=0)
    assert _manifest(api, cranes, str(config)) == before
    assert stack.states() == states
    assert len(salvage.archives()[name]) == 2  # the backup and the safety backup


def test_a_label_naming_a_path_no_container_bind_mounts_is_refused_and_touches_nothing(
    stack, salvage, api, tmp_path
):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "f").write_text("x")
    # The labelled container binds one directory; its label names another path, and a
    # destination that is the host's /etc in another container.
    evil = _bind_box(
        stack, api, "evil", {str(mine): "/mine"}, labels={f"salvage.tide.{stack.tide}": "/etc"}
    )
    _bind_box(stack, api, "root", {"/etc": "/etc"})
    salvage.use_tar()
    before = stack.states()
    since = time.time()

    done = salvage("run", "--tide", stack.tide)
    assert done.returncode != 0
    expected = (
        f'container "{evil}": label salvage.tide.{stack.tide}: "/etc" is not a bind mount of'
        " this container (only a container's own bind mounts can be backed up)"
    )
    assert [line for line in done.stderr.splitlines() if "/etc" in line][0].endswith(expected)
    assert "Traceback" not in done.stderr
    assert stack.states() == before
    # No crane ran, no container changed state, nothing was written.
    seen = events(api, since)
    assert not [n for n, a, _ in seen if a in ("create", "start", "die", "pause")], seen
    assert not salvage.backups.exists() or not list(salvage.backups.rglob("*.tar*"))
    check = salvage("check")
    assert check.returncode != 0 and expected in check.stderr + check.stdout
