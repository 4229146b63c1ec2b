"""End to end under a real systemd: a booted Debian 12 container (systemd, logind, journald,
Debian's own Python libraries) with salvage installed as a package installs it, backing up
a compose project on the test engine through the mounted socket.

The image is built once per engine (debootstrap, about a minute): see
support/systemd_container.py.
"""

from __future__ import annotations

import json
import re
import textwrap
import time

import pytest
from support.harness import TAR_CRANE, Stack
from support.systemd_container import SystemdContainer, ensure_image, installed_files

pytestmark = [pytest.mark.docker, pytest.mark.systemd]
METRICS = "/var/lib/prometheus/node-exporter"  # Debian's node_exporter textfile directory


class E2E:
    def __init__(self, api, docker_host: str, tmp) -> None:
        self.api = api
        self.stack = Stack(api, docker_host, tmp)
        prefix = self.stack.prefix
        self.tide_a, self.tide_b = f"tide{prefix}", f"été{prefix}"  # one name not ASCII
        self.backups = self.stack.volume("backups")  # the cranes' target: a host path would
        # be looked up on the engine's host, not in the systemd container
        self.project, self.db, self.app, self.other = self.stack.shop(
            [self.tide_a], self.tide_b, "4s"
        )

    def config(self, extra: str = "") -> str:
        return textwrap.dedent(
            f"""
            machine = "e2e"
            metrics_directory = "{METRICS}"
            [tides.{self.tide_a}]
            schedule = "hourly"
            [tides."{self.tide_b}"]
            schedule = "*-*-* 03:00"
            randomized_delay = "10m"
            {extra}
            [cranes.tar]
            image = "{TAR_CRANE}"
            pull = "never"
            mounts = {{ "{self.backups}" = "/salvage/target" }}
            """
        )

    def unit(self, tide: str) -> str:
        code, out = self.box.sh(f"systemd-escape --template=salvage@.service '{tide}'")
        assert code == 0, out
        return out.strip()

    def run_unit(self, unit: str, watch=None) -> list:
        """`systemctl start` (which returns at READY=1), then samples of `watch()` until the
        unit is inactive again."""
        code, out = self.box.sh(f"systemctl start '{unit}'")
        assert code == 0, out + self.journal(unit)
        samples = []
        deadline = time.monotonic() + 180
        while self.box.sh(f"systemctl is-active --quiet '{unit}'")[0] == 0:
            assert time.monotonic() < deadline, self.journal(unit)
            if watch:
                samples.append(watch())
            time.sleep(0.1)
        return samples

    def result(self, unit: str) -> dict:
        out = self.box.sh(f"systemctl show -p Result -p ExecMainStatus '{unit}'")[1]
        return dict(line.split("=", 1) for line in out.split())

    def journal(self, unit: str, *args: str) -> str:
        return self.box.sh(f"journalctl --no-pager -u '{unit}' {' '.join(args)}")[1]

    def archives(self) -> list:
        return self.stack.archives_in(self.backups)

    def state(self, container: str) -> str:
        return self.stack.state(container)


@pytest.fixture(scope="module")
def e2e(api, docker_host, images, tmp_path_factory):
    image = ensure_image(docker_host)
    setup = E2E(api, docker_host, tmp_path_factory.mktemp("e2e"))
    socket = docker_host[len("unix://") :]
    setup.box = SystemdContainer(api, image, socket)
    try:
        setup.box.put({**installed_files(setup.config()), f"{METRICS}/.keep": (b"", 0o644)})
        setup.box.start()
        yield setup
    finally:
        setup.box.remove()
        setup.stack.cleanup()


def test_generator_made_one_active_timer_per_tide_at_boot(e2e):
    code, timers = e2e.box.sh("systemctl list-timers --no-pager --no-legend")
    assert code == 0
    units = [line.split()[-2] for line in timers.splitlines() if "salvage@" in line]
    assert sorted(units) == sorted(
        [
            e2e.unit(e2e.tide_a).replace(".service", ".timer"),
            e2e.unit(e2e.tide_b).replace(".service", ".timer"),
        ]
    )
    show = e2e.box.sh(f"systemctl show -p TimersCalendar '{e2e.unit(e2e.tide_b)[:-8]}.timer'")[1]
    assert "OnCalendar=*-*-* 03:00:00" in show


def test_installed_units_verify_clean_and_score_well(e2e):
    units = f"salvage.service {e2e.unit(e2e.tide_a)} '{e2e.unit(e2e.tide_b)}'"
    assert e2e.box.sh(f"systemd-analyze verify {units}") == (0, "")
    out = e2e.box.sh(f"systemd-analyze security {e2e.unit(e2e.tide_a)} --no-pager")[1]
    assert float(re.search(r"Overall exposure level for \S+: (\d+\.\d+)", out).group(1)) <= 2.5


def test_start_tide_unit_backs_up_the_compose_project(e2e):
    unit = e2e.unit(e2e.tide_a)

    def watch():
        app_before = e2e.state(e2e.app)
        out = e2e.box.sh(f"systemd-inhibit --list --no-pager; systemctl status --no-pager '{unit}'")
        return app_before, out[1], e2e.state(e2e.app)

    samples = e2e.run_unit(unit, watch)
    assert e2e.result(unit) == {"Result": "success", "ExecMainStatus": "0"}, e2e.journal(unit)
    assert e2e.state(e2e.app) == e2e.state(e2e.db) == "running"
    assert [a for a in e2e.archives() if f"/e2e/{e2e.project}_data/" in a]
    # The metrics directory is writable under ProtectSystem=strict (the generator's drop-in).
    code, metrics = e2e.box.sh(f"cat {METRICS}/salvage.prom")
    assert code == 0 and f'salvage_tide_last_run_success{{tide="{e2e.tide_a}"}} 1' in metrics, (
        metrics + e2e.journal(unit)
    )

    # While its containers were down, logind listed salvage's lock.
    down = [out for before, out, after in samples if before == after == "exited"]
    assert down, samples
    for out in down:
        locks = [line for line in out.splitlines() if re.match(r"\s*salvage\s", line)]
        assert any(" block" in line and "shutdown:sleep" in line for line in locks), out
    # `systemctl status` showed what it was doing.
    statuses = {m for _, out, _ in samples for m in re.findall(r'Status: "([^"]*)"', out)}
    assert f"tide {e2e.tide_a}, group 1/1 {e2e.project}: stopping or pausing containers" in (
        statuses
    ), statuses

    # The journal has the run, each line with its priority, under the identifier salvage.
    entries = [json.loads(line) for line in e2e.journal(unit, "-o json").splitlines()]
    mine = [e for e in entries if e.get("SYSLOG_IDENTIFIER") == "salvage"]
    summary = [e for e in mine if e["MESSAGE"].startswith(f"tide {e2e.tide_a}: 1 volume backed")]
    assert len(summary) == 1 and summary[0]["PRIORITY"] == "6"
    assert {e["PRIORITY"] for e in mine} <= {"4", "6"}  # no <N> left in the text either
    assert not [e for e in mine if e["MESSAGE"].startswith("<")]


def test_start_salvage_backs_up_every_tide(e2e):
    before = e2e.archives()
    e2e.run_unit("salvage.service")
    assert e2e.result("salvage.service") == {"Result": "success", "ExecMainStatus": "0"}
    new = sorted(set(e2e.archives()) - set(before))
    assert [a.split("/")[3] for a in new] == sorted([f"{e2e.project}_data", e2e.other])
    summaries = e2e.box.sh("journalctl --no-pager -t salvage -o cat")[1]
    for tide in (e2e.tide_a, e2e.tide_b):
        assert f"tide {tide}: 1 volume backed up, 0 failed" in summaries


def test_a_tide_not_in_the_configuration_is_a_notice_not_a_failed_unit(e2e):
    unit = "salvage@nosuch.service"
    assert e2e.box.sh(f"systemctl start {unit}")[0] == 0
    assert e2e.result(unit) == {"Result": "success", "ExecMainStatus": "0"}
    notice = 'tide "nosuch": not in /etc/salvage/salvage.toml (removed?): nothing to do'
    assert notice in e2e.journal(unit, "-p warning", "-o cat")
    assert e2e.journal(unit, "-p err", "-o cat").strip() in ("", "-- No entries --")


def test_systemctl_stop_mid_run_restores_the_containers(e2e):
    unit = e2e.unit(e2e.tide_a)
    assert e2e.box.sh(f"systemctl start '{unit}'")[0] == 0
    deadline = time.monotonic() + 60
    while e2e.state(e2e.app) != "exited":  # down; db takes 4 s to stop
        assert time.monotonic() < deadline, e2e.journal(unit)
        time.sleep(0.05)
    code, out = e2e.box.sh(f"systemctl stop '{unit}'")
    assert code == 0, out
    assert e2e.state(e2e.app) == e2e.state(e2e.db) == "running"
    journal = e2e.journal(unit, "-o cat")
    assert "; interrupted: SIGTERM" in journal
    assert e2e.box.sh("systemd-inhibit --list --no-pager | grep -c salvage")[1].strip() == "0"


def test_a_new_tide_gets_its_timer_on_daemon_reload(e2e):
    e2e.box.put(installed_files(e2e.config('[tides.gamma]\nschedule = "weekly"')))
    assert e2e.box.sh("systemctl daemon-reload")[0] == 0
    assert e2e.box.sh("systemctl start timers.target")[0] == 0
    timers = e2e.box.sh("systemctl list-timers --no-pager --no-legend")[1]
    assert "salvage@gamma.timer" in timers
    assert e2e.box.sh("systemctl is-enabled salvage@gamma.timer")[1].strip() == "enabled-runtime"


def test_a_removed_tides_timer_never_starts_a_backup(e2e):
    """gamma (from the test above) leaves the configuration; as docs/systemd.md says:
    daemon-reload. Its timer has no schedule left, and nothing is failed."""
    e2e.box.put(installed_files(e2e.config()))
    assert e2e.box.sh("systemctl daemon-reload")[0] == 0
    assert e2e.box.sh("systemctl start timers.target")[0] == 0
    timers = e2e.box.sh("systemctl list-timers --no-pager --no-legend")[1]
    gamma = [line for line in timers.splitlines() if "salvage@gamma.timer" in line]
    assert all(line.split()[0] == "-" for line in gamma), timers  # no next time: never fires
    show = e2e.box.sh(
        "systemctl show -p TimersCalendar -p NextElapseUSecRealtime salvage@gamma.timer"
    )[1]
    assert "OnCalendar" not in show, show
    assert e2e.box.sh("systemctl start salvage@gamma.service")[0] == 0  # a late start: a notice
    assert e2e.result("salvage@gamma.service")["Result"] == "success"
    failed = e2e.box.sh("systemctl list-units --failed --no-pager --no-legend 'salvage@gamma*'")
    assert "salvage" not in failed[1], failed


# A webhook that answers one byte every 2 s, on the booted container's own loopback.
SLOW_WEBHOOK = b"""import socket, time
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", 8099))
server.listen(8)
while True:
    client, _ = server.accept()
    client.recv(65536)
    try:
        for byte in b"HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\n\\r\\nok":
            client.send(bytes([byte]))
            time.sleep(2)
    except OSError:
        pass
    client.close()
"""


def test_a_slow_webhook_never_holds_a_stop(e2e):
    """Issue 17 item 6: once the containers are back, `systemctl stop` ends salvage at once,
    although a webhook is still trickling its answer, and well within TimeoutStopSec."""
    # The target's own timeout, per try: a stop that waited for the delivery would take at
    # least this long (the webhook trickles its answer for 80 s), half of it is "at once" on
    # however loaded a machine, and all of it is within the unit's TimeoutStopSec (2 min).
    timeout = 60.0
    e2e.box.put({"/usr/local/bin/slow-webhook": (SLOW_WEBHOOK, 0o755)})
    assert (
        e2e.box.sh("systemd-run --unit slow-webhook /usr/bin/python3 /usr/local/bin/slow-webhook")[
            0
        ]
        == 0
    )
    notify = (
        f'[[notify]]\nkind = "webhook"\nurl = "http://127.0.0.1:8099/hook"\n'
        f'events = ["tide.success"]\ntimeout = "{timeout:.0f}s"\nretries = 2\n'
    )
    e2e.box.put(installed_files(e2e.config(notify)))
    unit = e2e.unit(e2e.tide_a)
    try:
        assert e2e.box.sh(f"systemctl start '{unit}'")[0] == 0
        deadline = time.monotonic() + 120
        while not re.search(r"tide \S+: \d+ volumes? backed up", e2e.journal(unit, "-o cat")):
            assert time.monotonic() < deadline, e2e.journal(unit)
            time.sleep(0.2)
        assert e2e.box.sh(f"systemctl is-active '{unit}'")[1].strip() == "active"  # delivering
        started = time.monotonic()
        code, out = e2e.box.sh(f"systemctl stop '{unit}'")
        took = time.monotonic() - started
        assert code == 0, out
        assert took < timeout / 2, (took, e2e.journal(unit))
        assert e2e.state(e2e.app) == e2e.state(e2e.db) == "running"
    finally:
        e2e.box.sh("systemctl stop slow-webhook")
        e2e.box.put(installed_files(e2e.config()))
