"""salvage behind a socket proxy: HAProxy from Debian with the configuration that
`salvage proxy-config` prints for the scene's salvage.toml, and its Lua rules. Every command
passes it; a container, volume, exec or image that would reach the host is refused with the
proxy's own 403, however its body is spelled; one call denied is one line."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import tarfile
import textwrap

import docker
import pytest
from support.debian import GNU_TAR_CRANE, crane_image
from support.harness import BUSYBOX, SCRIPT_CRANE, TAR_CRANE
from support.scene import CALM, wait_for

from salvage.actions.proxy_config import BODY_CAP

# HAProxy's own answer to a denied request (the engine answers in JSON).
PROXY_403 = "Request forbidden by administrative rules"


@pytest.fixture
def proxy(scene, tmp_path):
    """Start HAProxy with the allow-list salvage prints for a config, with the paths that
    match the regular expression `deny` refused first, logging at level info (the rules
    then log each allowed body's size); stop it by pid."""
    procs = []
    log = tmp_path / "haproxy.log"

    def start(config=None, deny: str = "") -> str:
        if not shutil.which("haproxy"):
            pytest.fail("haproxy is not installed: run `make deps`")
        printed = scene.salvage("proxy-config", config=config)
        assert printed.returncode == 0, printed.stderr
        path = tmp_path / f"haproxy{len(procs)}.cfg"
        lines = []
        for line in printed.stdout.replace("local0 warning", "local0 info").splitlines():
            lines.append(line)
            if deny and line.strip() == "http-request deny deny_status 403 if versioned !recent":
                lines.append(f"    http-request deny deny_status 403 if {{ path_reg {deny} }}")
        path.write_text("".join(f"{line}\n" for line in lines))
        socket = tmp_path / f"proxy{len(procs)}.sock"
        env = dict(
            os.environ,
            SALVAGE_PROXY_SOCKET=str(socket),
            DOCKER_SOCKET=scene.engine.host[len("unix://") :],
        )
        procs.append(
            subprocess.Popen(["haproxy", "-db", "-f", str(path)], env=env, stderr=open(log, "a"))
        )
        wait_for(lambda: socket.exists() or procs[-1].poll() is not None, "the proxy's socket")
        assert socket.exists(), log.read_text()
        return f"unix://{socket}"

    start.log = log  # type: ignore[attr-defined]
    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(timeout=10)


def largest_bodies(log) -> dict:
    """The largest body the rules allowed, in bytes, per kind of request (from the log)."""
    found: dict = {}
    for kind, size in re.findall(
        r"salvage proxy: POST /v[0-9.]+/(containers/create|volumes/create|containers/[^/ ]+/exec|"
        r"images/create)\S*: allowed, (\d+) bytes",
        log.read_text(),
    ):
        kind = "exec" if kind.endswith("/exec") else kind
        found[kind] = max(found.get(kind, 0), int(size))
    return found


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
# The script is a file in the target (the proxy refuses a crane whose environment holds
# quotes or line breaks: JSON escapes them).
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


def _keeper_config(scene, secret, image=SCRIPT_CRANE):
    """A crane whose target and secret are host paths: both bind mounts."""
    (scene.out / "keeper.sh").write_text(KEEPER)
    path = scene.tmp / "keeper.toml"
    path.write_text(
        textwrap.dedent(f"""
        machine = "faults"
        state_directory = "{scene.state}"
        [tides.{scene.tide}]
        crane = "keeper"
        [cranes.keeper]
        image = "{image}"
        pull = "never"
        mounts = {{ "{scene.out}" = "/salvage/target" }}
        secrets = {{ TOKEN = "{secret}" }}
        env = {{ CRANE_SCRIPT = ". /salvage/target/keeper.sh" }}
        """)
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


def test_every_command_passes_the_proxy_staged_with_a_dump(scene, proxy, table):
    """The tar crane (GNU tar and cp: it stages) with a group of 16 volumes of 64-character
    names (the stager's body grows with the group) and a database dump, all through the
    proxy: run, verify --restore, restore --to, restore --all of the lost volumes, recover.
    The rules log each body they allow: the largest are salvage's own largest."""
    image = crane_image(scene.engine.host, "tar", GNU_TAR_CRANE)
    config = scene.tmp / "tar.toml"
    config.write_text(
        textwrap.dedent(f"""
        machine = "faults"
        state_directory = "{scene.state}"
        [tides.{scene.tide}]
        crane = "tar"
        staging = "always"
        [cranes.tar]
        image = "{image}"
        pull = "never"
        mounts = {{ "{scene.out}" = "/salvage/target" }}
        # its `volumes` action (restore --all) finds .tar.gz archives only
        env = {{ TAR_COMPRESS = "gzip" }}
        """)
    )
    config.chmod(0o600)
    vols = [scene.volume(f"{n:02d}-" + "x" * (60 - len(scene.prefix))) for n in range(16)]
    assert all(len(v) == 64 for v in vols)
    app = scene.container("app", vols, scene.label(*vols))
    db = scene.volume("db")
    dump = {
        "salvage.dump": "custom",
        "salvage.dump.tide": scene.tide,
        "salvage.dump.command": "cat /db/data",
        "salvage.dump.restore": "cat > /db/new && mv /db/new /db/data",
    }
    scene.container("db", [db], dump)
    host = proxy(config)

    def salvage(*args):
        return scene.salvage(*args, config=config, DOCKER_HOST=host)

    codes = {}
    ran = salvage("run")
    codes["run"] = ran.returncode
    staged = sum(f"volume {v}: staged in" in ran.stderr for v in vols)
    codes["verify --restore"] = salvage("verify", "--restore").returncode
    copy = f"{vols[0]}-copy"
    scene.volumes.append(copy)
    codes["restore --to"] = salvage("restore", vols[0], "--to", copy).returncode
    scene.api.remove_container(app, force=True)  # the app and its volumes lost
    for vol in vols:
        scene.api.remove_volume(vol)
    codes["restore --all"] = salvage("restore", "--machine", "faults", "--all").returncode
    codes["recover"] = salvage("recover").returncode
    back = sum(scene.run_once(v, "cat /v/data") == "important\n" for v in [copy, *vols])
    largest = largest_bodies(proxy.log)
    assert max(largest.values()) < BODY_CAP
    table(
        "through the proxy: a staged run of 16 volumes (64-character names) and a dump;"
        " verify --restore; restore --to; restore --all of the lost volumes; recover",
        "all exit 0; 16 staged; data back in 17 volumes; 0 left of salvage's",
        f"{'all exit 0' if not any(codes.values()) else codes}; {staged} staged;"
        f" data back in {back} volumes; {_leftovers(scene)} left of salvage's",
    )
    print(f"largest bodies allowed through the proxy: {largest}")


def _leftovers(scene) -> int:
    """This salvage's cranes, stagers, stage and scratch volumes still there."""
    instance = f"salvage.instance={scene.state}"
    cranes = scene.api.containers(all=True, filters={"label": ["salvage.crane", instance]})
    volumes = [
        v
        for label in ("salvage.stage", "salvage.scratch")
        for v in scene.api.volumes(filters={"label": [label, instance]})["Volumes"] or []
    ]
    return len(cranes) + len(volumes)


def _raw(api, path, body=None, headers=None):
    """POST a request through the proxy as it is written: (status, text of the answer)."""
    answer = api._post(
        api._url(path),
        data=body,
        headers=headers if headers is not None else {"Content-Type": "application/json"},
    )
    return answer.status_code, answer.text


CONTAINERS = {
    "privileged mode": dict(privileged=True),
    "an added capability (SYS_ADMIN)": dict(cap_add=["SYS_ADMIN"]),
    "a device (/dev/kmsg)": dict(devices=["/dev/kmsg:/dev/kmsg:r"]),
    "the host's PID namespace": dict(pid_mode="host"),
    "the host's IPC namespace": dict(ipc_mode="host"),
    "the host's network": dict(network_mode="host"),
    "a bind mount of /": dict(binds=["/:/host:ro"]),
    "a bind mount of /etc beside an allowed one": dict(
        binds=["OUT:/salvage/target:rw", "/etc:/host:ro"]
    ),
    "a bind mount of a parent of an allowed path": dict(binds=["OUT/..:/salvage/target:rw"]),
    "a bind mount of /, as a Mount": dict(mounts=[docker.types.Mount("/host", "/", "bind")]),
    "a configured secret file bound read-write": dict(binds=["SECRET:/run/secrets/TOKEN:rw"]),
    "a volume bound read-write where salvage binds it read-only": dict(binds=["VOL:/v"]),
}


@pytest.mark.parametrize("what", list(CONTAINERS))
def test_a_container_that_reaches_the_host_is_refused(scene, proxy, table, what):
    """Asked for with docker-py, of the configured crane's own image."""
    secret = scene.tmp / "token"
    secret.write_text("s3cret\n")
    api = docker.APIClient(base_url=proxy(_keeper_config(scene, secret)), version="auto")
    vol = scene.volume("data")
    spelled = json.dumps(CONTAINERS[what]).replace("OUT", str(scene.out)).replace("VOL", vol)
    options = json.loads(spelled.replace("SECRET", str(secret)))
    before = len(scene.api.containers(all=True))
    try:
        api.create_container(
            SCRIPT_CRANE,
            ["cat", "/host/etc/shadow"],
            host_config=api.create_host_config(**options),
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


def _base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    return digits[n] if n < 36 else _base36(n // 36) + digits[n % 36]


def _binds(*binds: str) -> str:
    return '{"Image": "IMG", "HostConfig": {"Binds": [' + ", ".join(binds) + "]}}"


# Create bodies as an attacker writes them (IMG: the configured crane's image). Each would
# give a container the host's / (or more), or is a spelling the rules do not read.
HOSTILE = {
    "issue 24 #1: an escaped quote that ends a pattern's Binds list early": (
        '{"Image":"IMG","HostConfig":{"Binds":["vv:/x\\"]","/:/host"]}}'
    ),
    "issue 24 #2: 1,400 short binds before /:/host": (
        '{"Image":"IMG","HostConfig":{"Binds":['
        + ",".join(f'"vv:/{_base36(n)}"' for n in range(1400))
        + ',"/:/host"]}}'
    ),
    "a key spelled with \\u0069 (B\\u0069nds)": '{"Image": "IMG", "HostConfig":'
    ' {"B\\u0069nds": ["/:/host"]}}',
    "the source / spelled \\u002f": _binds('"\\u002f:/host"'),
    "the source / spelled \\/": _binds('"\\/:/host"'),
    "Binds whose long s is U+017F, which Go folds to s (escaped)": '{"Image": "IMG",'
    ' "HostConfig": {"Bind\\u017f": ["/:/host"]}}',
    "Binds whose long s is U+017F, which Go folds to s (UTF-8)": '{"Image": "IMG",'
    ' "HostConfig": {"Bind\u017f": ["/:/host"]}}',
    "newlines and tabs inside the Binds list": '{"Image": "IMG", "HostConfig": {"Binds": [\n'
    '\t"vv:/v:ro",\n\t"/:/host"\n]}}',
    "8 kB of padding in Labels before HostConfig": '{"Image": "IMG", "Labels": {"salvage.pad":'
    ' "' + "x" * 8000 + '"}, "HostConfig": {"Binds": ["/:/host"]}}',
    "8 kB of padding in Env before HostConfig": '{"Image": "IMG", "Env": ["PAD='
    + "x" * 8000
    + '"], "HostConfig": {"Binds": ["/:/host"]}}',
    "a body just under the cap: padding, then /:/host": '{"Image": "IMG", "Env": ["PAD='
    + "x" * (BODY_CAP - 100)
    + '"], "HostConfig": {"Binds": ["/:/host"]}}',
    "a body just over the cap, of a plain container": '{"Image": "IMG", "Env": ["PAD='
    + "x" * BODY_CAP
    + '"], "HostConfig": {"NetworkMode": "none"}}',
    "a 1 MB body: padding, then /:/host": '{"Image": "IMG", "Env": ["PAD='
    + "x" * 1000000
    + '"], "HostConfig": {"Binds": ["/:/host"]}}',
    "Binds given twice, the second of /": '{"Image": "IMG", "HostConfig": {"Binds":'
    ' ["vv:/v:ro"], "Binds": ["/:/host"]}}',
    "HostConfig given twice, the second with a bind of /": '{"Image": "IMG", "HostConfig":'
    ' {"NetworkMode": "none"}, "HostConfig": {"Binds": ["/:/host"]}}',
    "binds in lower case beside Binds": '{"Image": "IMG", "HostConfig": {"Binds":'
    ' ["vv:/v:ro"], "binds": ["/:/host"]}}',
    "lower-case keys": '{"Image": "IMG", "hostconfig": {"privileged": true}}',
    "a top-level HostConfig key (Privileged)": '{"Image": "IMG", "Privileged": true}',
    "a top-level Binds key": '{"Image": "IMG", "Binds": ["/:/host"], "HostConfig": {}}',
    "a key spelled with a JSON escape (Privil\\u0065ged)": '{"Image": "IMG", "HostConfig":'
    ' {"Privil\\u0065ged": true}}',
    "a volume Mount whose driver options bind /": '{"Image": "IMG", "HostConfig": {"Mounts":'
    ' [{"Type": "volume", "Source": "vv", "Target": "/salvage/volume", "VolumeOptions":'
    ' {"DriverConfig": {"Name": "local", "Options": {"type": "none", "o": "bind",'
    ' "device": "/"}}}}]}}',
    "a bind with propagation rshared": _binds('"vv:/v:ro,rshared"'),
    "an image that is no crane's": '{"Image": "BUSYBOX", "Cmd": ["true"], "HostConfig":'
    ' {"Binds": ["vv:/v:ro"]}}',
}


@pytest.mark.parametrize("what", list(HOSTILE))
def test_a_hostile_create_body_is_refused(scene, proxy, table, what):
    """Written by hand, sent as it is: the proxy's own 403, and no container."""
    secret = scene.tmp / "token"
    secret.write_text("s3cret\n")
    api = docker.APIClient(
        base_url=proxy(_keeper_config(scene, secret)), version="auto", timeout=60
    )
    body = HOSTILE[what].replace("BUSYBOX", BUSYBOX).replace("IMG", SCRIPT_CRANE)
    before = {c["Id"] for c in scene.api.containers(all=True)}
    status, said = _raw(api, "/containers/create", body.encode())
    made = [c["Id"] for c in scene.api.containers(all=True) if c["Id"] not in before]
    for created in made:
        scene.api.remove_container(created, force=True)
    whose = "the proxy's" if PROXY_403 in said else f"the engine's: {said.strip()[:200]}"
    table(
        f"the proxy, asked for a container with {what} ({len(body.encode())} bytes)",
        "403 (the proxy's); 0 containers created",
        f"{status} ({whose}); {len(made)} containers created",
    )


def _rootfs() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo("hello")
        info.size = 3
        archive.addfile(info, io.BytesIO(b"hi\n"))
    return buffer.getvalue()


FORM = {"Content-Type": "application/x-www-form-urlencoded"}
# Images in a registry at 127.0.0.1:9, where nothing listens: a pull that went through
# would stay on this machine.
CRANE = "127.0.0.1:9/salvage/crane:1"
OTHER = "127.0.0.1%3A9%2Fother"
CRANE_QUERY = "fromImage=127.0.0.1%3A9%2Fsalvage%2Fcrane&tag=1"
IMAGES = {
    "issue 24 #3: fromSrc=- (an image imported from the body)": ("fromSrc=-&repo=x", None),
    "fromSrc=<URL> (the engine fetches it)": ("fromSrc=http%3A%2F%2F127.0.0.1%3A9%2Fx.tar", None),
    "fromImage of an image no crane uses": (f"fromImage={OTHER}&tag=1", None),
    "the crane's image, and fromSrc=- in a form body": (CRANE_QUERY, FORM),
    "the crane's image, and fromSrc=- too": (f"{CRANE_QUERY}&fromSrc=-", None),
    "the crane's image given twice, the second another": (f"{CRANE_QUERY}&fromImage={OTHER}", None),
}


@pytest.mark.parametrize("what", list(IMAGES))
def test_an_image_import_or_a_pull_of_another_image_is_refused(scene, proxy, table, what):
    secret = scene.tmp / "token"
    secret.write_text("s3cret\n")
    api = docker.APIClient(
        base_url=proxy(_keeper_config(scene, secret, image=CRANE)), version="auto", timeout=60
    )
    query, headers = IMAGES[what]
    body = b"fromSrc=-" if headers is FORM else _rootfs() if "fromSrc=-" in query else None
    before = {i["Id"] for i in scene.api.images(all=True)}
    status, said = _raw(
        api,
        f"/images/create?{query}",
        body,
        headers or {"Content-Type": "application/x-tar"},
    )
    made = [i["Id"] for i in scene.api.images(all=True) if i["Id"] not in before]
    for created in made:
        scene.api.remove_image(created, force=True)
    whose = "the proxy's" if PROXY_403 in said else f"the engine's: {said.strip()[:200]}"
    table(
        f"the proxy, asked for an image with {what}",
        "403 (the proxy's); 0 images created",
        f"{status} ({whose}); {len(made)} images created",
    )


def test_a_pull_of_the_configured_crane_image_passes(scene, proxy, table):
    """The crane's registry is 127.0.0.1:9 (nothing listens): the engine's own error, not
    the proxy's 403, says the pull went through."""
    secret = scene.tmp / "token"
    secret.write_text("s3cret\n")
    api = docker.APIClient(
        base_url=proxy(_keeper_config(scene, secret, image=CRANE)), version="auto", timeout=60
    )
    status, said = _raw(api, f"/images/create?{CRANE_QUERY}")
    table(
        "the proxy, asked to pull the configured crane's image (its registry unreachable)",
        "the engine's answer",
        "the proxy's 403" if PROXY_403 in said else "the engine's answer",
    )


def test_a_plain_container_and_volume_pass_and_host_paths_do_not(scene, proxy, table):
    secret = scene.tmp / "token"
    secret.write_text("s3cret\n")
    api = docker.APIClient(base_url=proxy(_keeper_config(scene, secret)), version="auto")
    vol = scene.volume("data")
    # what salvage sends: the crane's target, read-write; a volume read-only; the secret
    binds = [
        f"{scene.out}:/salvage/target:rw",
        f"{vol}:/v:ro",
        f"{secret}:/run/secrets/TOKEN:ro",
    ]
    created = api.create_container(
        SCRIPT_CRANE,
        ["true"],
        labels={"salvage.crane": "x"},
        host_config=api.create_host_config(binds=binds, network_mode="none"),
    )
    api.remove_container(created, force=True)
    padded = api.create_container(  # a body near the cap, as a large crane env makes it
        SCRIPT_CRANE,
        ["true"],
        environment={"PAD": "x" * (BODY_CAP - 2000)},
        host_config=api.create_host_config(network_mode="none"),
    )
    api.remove_container(padded, force=True)
    plain = f"{scene.prefix}-plain"
    scene.volumes.append(plain)
    api.create_volume(plain, driver="local", labels={"com.example": "x"})
    statuses = []
    overlay = {"type": "overlay", "device": "x:", "o": "lowerdir=/,upperdir=/u,workdir=/w"}
    for opts in (
        {"type": "none", "o": "bind", "device": "/"},
        {"type": "ext4", "device": "/dev/sda1"},
        overlay,
        {"type": "tmpfs", "device": "tmpfs", "o": "bind"},
    ):
        try:
            api.create_volume(f"{scene.prefix}-host", driver="local", driver_opts=opts)
            statuses.append("created")
        except docker.errors.APIError as error:
            statuses.append(str(error.status_code))
    table(
        "the proxy, asked for volumes that mount a host path or device (bind, ext4, overlay,"
        " tmpfs with bind)",
        "403, 403, 403, 403",
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
