"""salvage behind a socket proxy: HAProxy from Debian with the configuration that
`salvage proxy-config` prints for the scene's salvage.toml. Every command passes it; a
container or volume that would reach the host is refused; one call denied is one line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import textwrap

import docker
import pytest
from support.harness import BUSYBOX, SCRIPT_CRANE, TAR_CRANE
from support.scene import CALM, wait_for


@pytest.fixture
def proxy(scene, tmp_path):
    """Start HAProxy with the allow-list salvage prints for a config, minus the allow
    lines that contain `deny`; stop it by pid."""
    procs = []

    def start(config=None, deny: str = "") -> str:
        if not shutil.which("haproxy"):
            pytest.fail("haproxy is not installed: run `make deps`")
        printed = scene.salvage("proxy-config", config=config)
        assert printed.returncode == 0, printed.stderr
        path = tmp_path / f"haproxy{len(procs)}.cfg"
        lines = printed.stdout.splitlines()
        denied = [line for line in lines if deny and "http-request allow" in line and deny in line]
        path.write_text("".join(f"{line}\n" for line in lines if line not in denied))
        socket = tmp_path / f"proxy{len(procs)}.sock"
        env = dict(
            os.environ,
            SALVAGE_PROXY_SOCKET=str(socket),
            DOCKER_SOCKET=scene.engine.host[len("unix://") :],
        )
        procs.append(
            subprocess.Popen(
                ["haproxy", "-db", "-f", str(path)],
                env=env,
                stderr=open(tmp_path / "haproxy.log", "a"),
            )
        )
        wait_for(lambda: socket.exists() or procs[-1].poll() is not None, "the proxy's socket")
        assert socket.exists(), (tmp_path / "haproxy.log").read_text()
        return f"unix://{socket}"

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(timeout=10)


def test_everything_salvage_needs_passes_the_allow_list(scene, proxy):
    vol = scene.volume("data")
    scene.container("stopped", [vol], scene.label(vol))
    scene.container("paused", [vol], {"salvage.action": "pause"})
    scene.container(
        "hooked", [vol], {"salvage.command.pre": "true", "salvage.command.post": "true"}
    )
    scene.snapshot()
    scene.go()
    host = proxy()
    assert scene.salvage("plan", DOCKER_HOST=host).returncode == 0
    assert scene.salvage("check", DOCKER_HOST=host).returncode == 0
    done = scene.salvage("run", DOCKER_HOST=host)
    assert done.returncode == 0, done.stderr
    assert (scene.out / f"{vol}.copy" / "data").read_text() == "important\n"
    assert scene.salvage("recover", DOCKER_HOST=host).returncode == 0
    assert scene.observe() == CALM


# A crane that keeps one snapshot per volume under its target, and its secret beside it.
KEEPER = """
d=/salvage/target/$SALVAGE_VOLUME_NAME
case "$SALVAGE_ACTION" in
backup) rm -rf "$d" && mkdir -p "$d" && cp -a /salvage/volume "$d/volume" &&
  cp /salvage/meta/meta.json "$TOKEN_FILE" "$d/";;
list) if [ -d "$d" ]; then echo '{"id": "one", "time": "now", "size": 1}'; fi;;
meta) cat "$d/meta.json";;
restore) cp -a "$d/volume/." /salvage/volume/;;
esac
"""


def _keeper_config(scene, secret):
    """A crane whose target and secret are host paths: both bind mounts."""
    path = scene.tmp / "keeper.toml"
    path.write_text(
        textwrap.dedent(f"""
        machine = "faults"
        state_directory = "{scene.state}"
        [tides.{scene.tide}]
        crane = "keeper"
        [cranes.keeper]
        image = "{SCRIPT_CRANE}"
        pull = "never"
        mounts = {{ "{scene.out}" = "/salvage/target" }}
        secrets = {{ TOKEN = "{secret}" }}
        """)
        + f"env = {{ CRANE_SCRIPT = '''{KEEPER}''' }}\n"
    )
    path.chmod(0o600)
    return path


def test_restores_pass_the_allow_list_too(scene, proxy, table):
    secret = scene.tmp / "token"
    secret.write_text("s3cret\n")
    config = _keeper_config(scene, secret)
    vol = scene.volume("data")
    app = scene.container("app", [vol], scene.label(vol))
    host = proxy(config)

    def salvage(*args):
        done = scene.salvage(*args, config=config, DOCKER_HOST=host)
        assert done.returncode == 0, f"{args}: {done.stderr}"
        return done

    salvage("run")
    assert (scene.out / vol / "TOKEN").read_text() == "s3cret\n"
    found = json.loads(salvage("snapshots", vol, "--json").stdout)
    assert len(found) == 1
    copy = f"{scene.prefix}-copy"
    scene.volumes.append(copy)  # removed with the scene's
    salvage("restore", vol, "--to", copy)
    scene.api.remove_container(app, force=True)  # the volume lost, its container gone too
    scene.api.remove_volume(vol)
    salvage("restore", vol)
    salvage("restore", vol, "--force")  # over data: a look inside, a safety backup first
    back = [scene.run_once(v, "cat /v/data") == "important\n" for v in (copy, vol)]
    salvage("recover")
    table(
        "salvage run, snapshots, restore --to, restore of a lost volume and restore"
        " --force through the proxy",
        "all exit 0; data back in both",
        f"all exit 0; data back in {'both' if all(back) else 'not both'}",
    )


def test_a_dump_passes_the_allow_list_and_its_replay_is_refused_in_one_line(scene, proxy, table):
    """salvage.dump through the proxy: the exec and the crane's stdin (attach) pass. The
    replay's exec input does not (HAProxy upgrades no request with a body, and the engine
    wants one to start an exec): the restore ends after crane_timeout with one line, the
    data untouched; without the proxy the same replay works."""
    config = scene.tmp / "dump.toml"
    config.write_text(
        textwrap.dedent(f"""
        machine = "faults"
        state_directory = "{scene.state}"
        [tides.{scene.tide}]
        crane = "tar"
        crane_timeout = "15s"
        [cranes.tar]
        image = "{TAR_CRANE}"
        pull = "never"
        mounts = {{ "{scene.out}" = "/salvage/target" }}
        """)
    )
    config.chmod(0o600)
    vol = scene.volume("data")  # holds "important"
    db = scene.container(
        "db",
        [vol],
        {
            "salvage.dump": "custom",
            "salvage.dump.tide": scene.tide,
            "salvage.dump.command": "cat /data/data",
            "salvage.dump.restore": "cat > /data/new && mv /data/new /data/data",
        },
    )
    host = proxy(config)
    ran = scene.salvage("run", config=config, DOCKER_HOST=host)
    assert ran.returncode == 0, ran.stderr
    scene.api.exec_start(scene.api.exec_create(db, ["sh", "-c", "echo lost > /data/data"]))
    proxied = scene.salvage("restore", "--dump", db, "--yes", config=config, DOCKER_HOST=host)
    errors = [line for line in proxied.stderr.splitlines() if line.startswith("error")]
    assert proxied.returncode == 1 and len(errors) == 1, proxied.stderr
    assert "did not end within 15 s" in errors[0] and "docs/dumps.md" in errors[0]
    assert scene.run_once(vol, "cat /v/data") == "lost\n"  # not replayed, not half replayed
    direct = scene.salvage("restore", "--dump", db, "--yes", config=config)
    assert direct.returncode == 0, direct.stderr
    assert scene.run_once(vol, "cat /v/data") == "important\n"
    table(
        "salvage run with a salvage.dump container through the proxy, then restore --dump",
        "run exits 0; the replay through the proxy: exit 1, 1 line, data untouched;"
        " without the proxy: replayed",
        f"run exits {ran.returncode}; the replay through the proxy: exit"
        f" {proxied.returncode}, {len(errors)} line, data untouched; without the proxy:"
        " replayed",
    )


def _raw(api, path, body):
    """POST a JSON text as it is written, through the proxy: its status code."""
    return api._post(
        api._url(path), data=body, headers={"Content-Type": "application/json"}
    ).status_code


CONTAINERS = {
    "privileged mode": dict(privileged=True),
    "an added capability (SYS_ADMIN)": dict(cap_add=["SYS_ADMIN"]),
    "a device (/dev/kmsg)": dict(devices=["/dev/kmsg:/dev/kmsg:r"]),
    "the host's PID namespace": dict(pid_mode="host"),
    "the host's IPC namespace": dict(ipc_mode="host"),
    "the host's network": dict(network_mode="host"),
    "a bind mount of /": dict(binds=["/:/host:ro"]),
    "a bind mount of /etc beside an allowed one": dict(binds=["OUT:/out", "/etc:/host:ro"]),
    "a bind mount of a parent of an allowed path": dict(binds=["OUT/..:/host"]),
    "a bind mount of /, as a Mount": dict(mounts=[docker.types.Mount("/host", "/", "bind")]),
    "a configured secret file bound read-write": dict(binds=["SECRET:/run/secrets/T:rw"]),
}


@pytest.mark.parametrize("what", list(CONTAINERS))
def test_a_container_that_reaches_the_host_is_refused(scene, proxy, table, what):
    secret = scene.tmp / "token"
    secret.write_text("s3cret\n")
    api = docker.APIClient(base_url=proxy(_keeper_config(scene, secret)), version="auto")
    spelled = json.dumps(CONTAINERS[what]).replace("OUT", str(scene.out))
    options = json.loads(spelled.replace("SECRET", str(secret)))
    before = len(scene.api.containers(all=True))
    try:
        api.create_container(
            BUSYBOX, ["cat", "/host/etc/shadow"], host_config=api.create_host_config(**options)
        )
        observed = "created"
    except docker.errors.APIError as error:
        observed = f"{error.status_code}"
    made = len(scene.api.containers(all=True)) - before
    table(
        f"the proxy, asked for a container with {what}",
        "403; 0 containers created",
        f"{observed}; {made} containers created",
    )


SPELLINGS = {
    "lower case keys": '{"Image": "IMG", "hostconfig": {"privileged": true}}',
    "a top-level HostConfig key": '{"Image": "IMG", "Privileged": true}',
    "a key spelled with a JSON escape": (
        '{"Image": "IMG", "HostConfig": {"Privil\\u0065ged": true}}'
    ),
    "two Binds keys, the second of /": (
        '{"Image": "IMG", "HostConfig": {"Binds": ["v:/v"], "Binds": ["/:/host"]}}'
    ),
}


@pytest.mark.parametrize("what", list(SPELLINGS))
def test_a_container_asked_for_in_other_spellings_is_refused(scene, proxy, table, what):
    api = docker.APIClient(base_url=proxy(), version="auto", timeout=60)
    status = _raw(api, "/containers/create", SPELLINGS[what].replace("IMG", BUSYBOX))
    table(
        f"the proxy, asked for a privileged container or a bind of / with {what}",
        "403",
        str(status),
    )


def test_a_plain_container_and_volume_pass_and_host_paths_do_not(scene, proxy, table):
    secret = scene.tmp / "token"
    secret.write_text("s3cret\n")
    api = docker.APIClient(base_url=proxy(_keeper_config(scene, secret)), version="auto")
    vol = scene.volume("data")
    binds = [f"{scene.out}:/out", f"{vol}:/v:ro", f"{secret}:/run/secrets/T:ro"]
    created = api.create_container(
        BUSYBOX,
        ["true"],
        labels={"salvage.crane": "x"},
        host_config=api.create_host_config(binds=binds, network_mode="none"),
    )
    api.remove_container(created, force=True)
    plain = f"{scene.prefix}-plain"
    scene.volumes.append(plain)
    api.create_volume(plain, driver="local", labels={"com.example": "x"})
    statuses = []
    overlay = {"type": "overlay", "device": "x:", "o": "lowerdir=/,upperdir=/u,workdir=/w"}
    for opts in (
        {"type": "none", "o": "bind", "device": "/"},
        {"type": "ext4", "device": "/dev/sda1"},
        overlay,
    ):
        try:
            api.create_volume(f"{scene.prefix}-host", driver="local", driver_opts=opts)
            statuses.append("created")
        except docker.errors.APIError as error:
            statuses.append(str(error.status_code))
    table(
        "the proxy, asked for volumes that mount a host path or device (bind, ext4, overlay)",
        "403, 403, 403",
        ", ".join(statuses),
    )


def test_a_privileged_exec_is_refused(scene, proxy, table):
    vol = scene.volume("data")
    app = scene.container("app", [vol])
    api = docker.APIClient(base_url=proxy(), version="auto", timeout=60)
    assert api.exec_create(app, ["true"])["Id"]
    try:
        api.exec_create(app, ["true"], privileged=True)
        observed = "created"
    except docker.errors.APIError as error:
        observed = str(error.status_code)
    table("the proxy, asked for a privileged command in a container", "403", observed)


def test_proxy_denying_one_endpoint(scene, proxy, table):
    vol = scene.volume("data")
    paused = scene.container("app", [vol], {**scene.label(vol), "salvage.action": "pause"})
    scene.snapshot()
    scene.go()
    done = scene.salvage("run", DOCKER_HOST=proxy(deny="/pause$"))
    container_id = scene.states()[paused][0]
    assert (
        f"the Docker engine refused POST /containers/{container_id}/pause (403 Forbidden)"
        in done.stderr
    ), done.stderr
    table(
        "the socket proxy denying one endpoint (pause)",
        f"exit 1; {CALM}",
        f"exit {done.returncode}; {scene.observe()}",
    )


def test_a_refused_call_outside_a_run_is_one_line_too(scene, proxy):
    vol = scene.volume("data")
    scene.config = scene.write_config()
    done = scene.salvage(
        "snapshots", vol, "--tide", scene.tide, DOCKER_HOST=proxy(deny="/containers/create$")
    )
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "error: the Docker engine refused POST /containers/create (403 Forbidden): does a"
        " socket proxy in front of it allow this call? (see docs/docker-api.md)"
    ], done.stderr
