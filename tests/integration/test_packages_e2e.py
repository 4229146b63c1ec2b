"""The .deb, end to end, as an admin uses it: built by `make deb`'s script (lintian
included) on the host, installed with dpkg in a booted Debian 12 and in a booted Debian 13
(systemd, journald, each release's own python3-docker and friends:
support/systemd_container.py), configured, run by systemd against the test engine through
the mounted socket, killed, upgraded, purged.

The tests run in order on one container: each takes the package where the last left it.
"""

from __future__ import annotations

import re
import textwrap
import time

import pytest
from support import distro
from support.harness import BUSYBOX, SCRIPT_CRANE, Stack
from support.packages import build_deb, cursor, journal, left_behind, snapshot, wait_inactive
from support.systemd_container import SystemdContainer, ensure_image

pytestmark = [pytest.mark.docker, pytest.mark.systemd]

STATE = "/var/lib/salvage"
PACKAGE_DIR = "/usr/lib/python3/dist-packages/salvage"
# Each release's own versions (the image has them from Debian's archive, as apt would):
# the package built on the host (Debian 12) installs and runs on Debian 13 as well.
DEBIAN_LIBRARIES = {
    "bookworm": {
        "python3-docker": "5.0.3-1",
        "python3-click": "8.1.3-2",
        "python3-dbus-next": "0.2.3-3",
        "python3-sdnotify": "0.3.1-3",
    },
    "trixie": {
        "python3-docker": "7.1.0-2",
        "python3-click": "8.2.0+0.really.8.1.8-1",
        "python3-dbus-next": "0.2.3-4",
        "python3-sdnotify": "0.3.2-2",
    },
}
RELEASES = ("bookworm", "trixie")
DEB = "/root/salvage.deb"  # not /tmp: Debian 13 mounts a tmpfs over it at boot


class Host:
    """The systemd container with the package, and the compose project it backs up."""

    def __init__(self, api, docker_host: str, tmp) -> None:
        self.api = api
        self.stack = Stack(api, docker_host, tmp)
        prefix = self.stack.prefix
        self.tide_a, self.tide_b, self.held = f"a{prefix}", f"b{prefix}", f"held{prefix}"
        # Not present yet: salvage builds it from the build context inside the package.
        self.crane_image = f"salvage/crane-tar:pkg-{prefix}"
        # Inside the unit's StateDirectory=, but this test's own: recovery removes the
        # leftover cranes of its state directory, and other systemd tests may share the engine.
        self.state_dir = f"{STATE}/{prefix}"
        # The cranes' target: a host path would be looked up on the engine's host.
        self.backups = self.stack.volume("backups")
        self.project, self.db, self.app, self.other = self.stack.shop(
            [self.tide_a, self.held], self.tide_b, "2s"
        )

    def configure(self, held: bool = False) -> None:
        """/etc/salvage/salvage.toml as the admin writes it: two tides (and `held`, whose
        crane takes 10 s, to act on a run in progress)."""
        extra = f"""
            [tides.{self.held}]
            crane = "slow"
            [cranes.slow]
            image = "{SCRIPT_CRANE}"
            pull = "never"
            env = {{ CRANE_SCRIPT = "sleep 10" }}
            """
        config = f"""
            machine = "pkg"
            state_directory = "{self.state_dir}"
            [tides.{self.tide_a}]
            schedule = "*-12-25 03:00"
            [tides.{self.tide_b}]
            schedule = "*-01-01 04:00"
            [cranes.tar]
            image = "{self.crane_image}"
            base = "{BUSYBOX}"
            pull = "never"
            mounts = {{ "{self.backups}" = "/salvage/target" }}
            {extra if held else ""}
            """
        self.box.put({"/etc/salvage/salvage.toml": (textwrap.dedent(config).encode(), 0o640)})

    def unit(self, tide: str) -> str:
        return f"salvage@{tide}.service"

    def run_unit(self, unit: str) -> dict:
        """`systemctl start` (it returns at READY=1), then wait for the run's end."""
        code, out = self.box.sh(f"systemctl start '{unit}'")
        assert code == 0, out + journal(self.box, unit)
        wait_inactive(self.box, unit)
        return self.result(unit)

    def result(self, unit: str) -> dict:
        out = self.box.sh(f"systemctl show -p Result -p ExecMainStatus '{unit}'")[1]
        return dict(line.split("=", 1) for line in out.split())

    def archives(self) -> list:
        return self.stack.archives_in(self.backups)

    def state(self, container: str) -> str:
        return self.stack.state(container)

    def started_at(self) -> tuple:
        return tuple(
            self.api.inspect_container(c)["State"]["StartedAt"] for c in (self.db, self.app)
        )

    def cranes(self, tide: str) -> list:
        """This salvage's crane containers of a tide, on the engine."""
        mine = ["salvage.crane", f"salvage.instance={self.state_dir}", f"salvage.crane.tide={tide}"]
        return self.api.containers(all=True, filters={"label": mine})

    def active_salvage_units(self) -> str:
        return self.box.sh(
            "systemctl list-units --no-legend --state=active,activating,"
            "deactivating 'salvage*.service'"
        )[1].strip()


@pytest.fixture(scope="session")
def deb(tmp_path_factory):
    return build_deb(tmp_path_factory.mktemp("deb"))


# Debian 12 and 13, each on a worker of its own under xdist (the tests of one release run in
# order on one container).
@pytest.fixture(
    scope="module",
    params=[pytest.param(r, marks=pytest.mark.xdist_group(f"packages-{r}")) for r in RELEASES],
)
def host(request, api, docker_host, images, deb, tmp_path_factory):
    release = request.param
    if not distro.serves(release):
        pytest.skip(f"no Debian mirror for {release} among this host's apt sources")
    image = ensure_image(docker_host, release)
    setup = Host(api, docker_host, tmp_path_factory.mktemp("packages"))
    setup.release = release
    setup.box = SystemdContainer(api, image, docker_host[len("unix://") :])
    try:
        setup.box.start()
        setup.box.put({DEB: (deb.read_bytes(), 0o644)})
        setup.before = snapshot(setup.box)
        yield setup
    finally:
        setup.box.remove()
        setup.stack.cleanup()
        if api.images(name=setup.crane_image):
            api.remove_image(setup.crane_image, force=True)


def test_dpkg_installs_it_on_debians_own_libraries_and_starts_nothing(host):
    code, out = host.box.sh(f"dpkg -i {DEB}")
    assert code == 0, out
    libraries = DEBIAN_LIBRARIES[host.release]
    versions = host.box.sh(f"dpkg-query -W {' '.join(libraries)}")[1]
    assert dict(line.split("\t") for line in versions.splitlines()) == libraries
    assert host.box.sh("salvage --version")[1].startswith("salvage, version ")

    files = host.box.sh("dpkg -L salvage")[1].split()
    for path in (
        "/usr/bin/salvage",
        "/lib/systemd/system/salvage@.service",
        "/lib/systemd/system/salvage@.timer",
        "/lib/systemd/system/salvage.service",
        "/lib/systemd/system-generators/salvage-generator",
        "/usr/share/man/man1/salvage.1.gz",
        "/etc/salvage/salvage.toml",
        "/usr/share/bash-completion/completions/salvage",
        "/usr/share/zsh/vendor-completions/_salvage",
        "/usr/share/fish/vendor_completions.d/salvage.fish",
        f"{PACKAGE_DIR}/crane/images/tar/Dockerfile",
        f"{PACKAGE_DIR}/crane/images/tar/entrypoint.sh",
        f"{PACKAGE_DIR}/crane/images/restic/Dockerfile",
    ):
        assert path in files
    assert host.box.sh("stat -c %a /etc/salvage/salvage.toml")[1].strip() == "640"
    assert "/etc/salvage/salvage.toml" in host.box.sh("cat /var/lib/dpkg/info/salvage.conffiles")[1]

    # Nothing ran: no salvage unit is active, none logged, no state yet but an empty run
    # history that the group salvage may read (status and history without sudo).
    assert host.active_salvage_units() == ""
    assert host.box.sh("journalctl --no-pager -q -t salvage")[1].strip() == ""
    assert host.box.sh(f"ls -A {STATE}")[1].split() == ["history.sqlite"]
    assert host.box.sh(f"stat -c '%a %U' {STATE}")[1].strip() == "711 root"
    history = host.box.sh(f"stat -c '%a %U %G %s' {STATE}/history.sqlite")[1].strip()
    assert history == "640 root salvage 0"


def test_two_tides_get_their_timers_from_the_generator(host):
    host.configure()
    host.box.put({"/etc/salvage/restic-password": (b"the admin's own\n", 0o600)})
    assert host.box.sh("systemctl daemon-reload")[0] == 0
    timers = sorted(f"salvage@{t}.timer" for t in (host.tide_a, host.tide_b))

    def listed(*args: str) -> list:
        out = host.box.sh(f"systemctl list-timers --no-pager --no-legend {' '.join(args)}")[1]
        return sorted(line.split()[-2] for line in out.splitlines() if "salvage@" in line)

    # Loaded and enabled at once; active from the next boot, or from:
    assert listed("--all") == timers
    for timer in timers:
        assert host.box.sh(f"systemctl is-enabled {timer}")[1].strip() == "enabled-runtime"
    assert host.box.sh("systemctl start timers.target")[0] == 0
    assert listed() == timers
    show = host.box.sh(f"systemctl show -p TimersCalendar {timers[0]}")[1]
    assert "OnCalendar=*-12-25 03:00:00" in show


def test_start_tide_unit_backs_up_the_compose_project(host):
    unit = host.unit(host.tide_a)
    assert host.run_unit(unit) == {"Result": "success", "ExecMainStatus": "0"}, journal(
        host.box, unit
    )
    assert host.state(host.app) == host.state(host.db) == "running"
    assert [a for a in host.archives() if f"/pkg/{host.project}_data/" in a]
    # The crane image came from the build context the package installed.
    log = journal(host.box, unit, "-o cat")
    assert f"building {host.crane_image} from {PACKAGE_DIR}/crane/images/tar" in log, log


def test_start_salvage_backs_up_every_tide(host):
    before = host.archives()
    assert host.run_unit("salvage.service") == {"Result": "success", "ExecMainStatus": "0"}
    new = sorted(set(host.archives()) - set(before))
    assert [a.split("/")[3] for a in new] == sorted([f"{host.project}_data", host.other])
    runs = journal(host.box, "", "-t salvage", "-o cat")
    assert runs.count(f"tide {host.tide_a}: 1 volume backed up, 0 failed") == 2, runs
    assert runs.count(f"tide {host.tide_b}: 1 volume backed up, 0 failed") == 1, runs


def test_an_upgrade_starts_no_backup(host):
    since, started, archives = cursor(host.box), host.started_at(), host.archives()
    code, out = host.box.sh(f"dpkg -i {DEB}")  # the same version again: an upgrade
    assert code == 0 and re.search(r"Unpacking salvage \((.+)\) over \(\1\)", out), out
    time.sleep(2)  # anything an upgrade started would have started by now
    assert host.box.sh("dpkg-query -W -f '${Status}' salvage")[1] == "install ok installed"
    assert host.active_salvage_units() == ""
    assert journal(host.box, "salvage*", f"--after-cursor='{since}'", "-q") == ""
    assert (host.started_at(), host.archives()) == (started, archives)


def test_an_upgrade_leaves_a_run_in_progress_alone(host):
    host.configure(held=True)
    unit = host.unit(host.held)
    assert host.box.sh(f"systemctl start '{unit}'")[0] == 0
    deadline = time.monotonic() + 60
    while not host.cranes(host.held):
        assert time.monotonic() < deadline, journal(host.box, unit)
        time.sleep(0.1)
    invocation = host.box.sh(f"systemctl show -p InvocationID --value '{unit}'")[1]
    code, out = host.box.sh(f"dpkg -i {DEB}")
    assert code == 0, out
    assert host.box.sh(f"systemctl is-active '{unit}'")[1].strip() == "active"
    assert host.box.sh(f"systemctl show -p InvocationID --value '{unit}'")[1] == invocation
    assert wait_inactive(host.box, unit) == "inactive", journal(host.box, unit)
    assert host.result(unit) == {"Result": "success", "ExecMainStatus": "0"}
    assert host.state(host.app) == host.state(host.db) == "running"


def test_kill_mid_run_leaves_no_container_down_after_the_stop_path(host):
    unit = host.unit(host.held)
    assert host.box.sh(f"systemctl start '{unit}'")[0] == 0
    deadline = time.monotonic() + 60
    while not (host.cranes(host.held) and host.state(host.db) == host.state(host.app) == "exited"):
        assert time.monotonic() < deadline, journal(host.box, unit)
        time.sleep(0.1)
    assert host.box.sh(f"systemctl kill -s KILL '{unit}'")[0] == 0
    assert wait_inactive(host.box, unit) == "failed"  # ExecStopPost= (salvage recover) ran
    assert host.result(unit)["Result"] == "signal"
    assert host.state(host.app) == host.state(host.db) == "running", journal(host.box, unit)
    assert host.cranes(host.held) == []
    assert host.box.sh(f"systemctl reset-failed '{unit}'")[0] == 0


def test_kill_while_a_container_is_still_stopping_leaves_no_container_down(host):
    unit = host.unit(host.held)
    assert host.box.sh(f"systemctl start '{unit}'")[0] == 0
    deadline = time.monotonic() + 60
    while host.state(host.app) != "exited":  # app is down, db goes next
        assert time.monotonic() < deadline, journal(host.box, unit)
        time.sleep(0.02)
    if host.state(host.db) != "running":
        pytest.skip("db stopped before the kill: not the case under test")
    assert host.box.sh(f"systemctl kill -s KILL '{unit}'")[0] == 0
    try:
        wait_inactive(host.box, unit)
        time.sleep(3)  # past db's stop grace period
        assert host.state(host.app) == host.state(host.db) == "running", journal(host.box, unit)
    finally:
        host.box.sh(f"systemctl reset-failed '{unit}'")
        if host.state(host.db) != "running":
            host.api.start(host.db)  # for the tests that follow


def test_purge_leaves_only_what_the_admin_wrote(host):
    archives = host.archives()
    unit = host.unit(host.held)  # a purge during a run (issue 17 item 9)
    assert host.box.sh(f"systemctl start '{unit}'")[0] == 0
    deadline = time.monotonic() + 60
    while not host.cranes(host.held):
        assert time.monotonic() < deadline, journal(host.box, unit)
        time.sleep(0.1)
    code, out = host.box.sh("dpkg --purge salvage")
    assert code == 0, out
    assert host.state(host.app) == host.state(host.db) == "running"
    assert left_behind(host.before, snapshot(host.box)) == {
        "/etc/salvage",
        "/etc/salvage/restic-password",
    }
    assert host.box.sh("systemctl list-units --all --no-legend 'salvage*'")[1].strip() == ""
    assert host.box.sh("ls /run/systemd/generator | grep salvage")[1] == ""
    assert host.archives() == archives  # the backups stay
