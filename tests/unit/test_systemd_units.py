"""The unit files, the timer generator and instance-name escaping, checked by systemd's own
tools (systemd-analyze, systemd-escape); the journal's priority prefixes; and the watchdog,
fed only while a run makes progress, read off a real NOTIFY_SOCKET."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from support.notify_socket import NotifySocket

from salvage.systemd import generator, notify, schedule

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "systemd"
ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(not ANALYZE, reason="systemd-analyze is not installed")

CONFIG = """
metrics_directory = "/var/lib/prometheus/node-exporter"
state_directory = "/srv/salvage 100%"
[tides."näs daily"]
schedule = "*-*-* 03:00"
randomized_delay = "30m"
[tides.weekly]
schedule = "Sun 04:00"
persistent = false
[tides.plain]
"""


def run_generator(tmp_path: Path, config: str, out: Path) -> subprocess.CompletedProcess:
    """The shipped generator file, as systemd runs it (three directories)."""
    path = tmp_path / "salvage.toml"
    path.write_text(textwrap.dedent(config))
    path.chmod(0o600)
    env = dict(os.environ, SALVAGE_CONFIG=str(path), PYTHONPATH=str(ROOT))
    return subprocess.run(
        [
            sys.executable,
            str(UNITS / "salvage-generator"),
            str(out),
            str(tmp_path / "early"),
            str(tmp_path / "late"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def systemd_escape(text: str) -> str:
    return subprocess.run(
        ["systemd-escape", "--", text], capture_output=True, text=True, check=True
    ).stdout.rstrip("\n")


# --- instance names -------------------------------------------------------------------------


@pytest.mark.skipif(not shutil.which("systemd-escape"), reason="systemd-escape is not installed")
@settings(max_examples=150, deadline=None)
@given(
    st.text(
        st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
        min_size=1,
        max_size=30,
    )
)
@example("näs daily")
@example(".hidden/tide-1\\x")
def test_escape_is_systemd_escape(name):
    assert schedule.escape(name) == systemd_escape(name)


# --- the generator --------------------------------------------------------------------------


def test_generator_enables_one_timer_per_tide_with_its_schedule(tmp_path):
    out = tmp_path / "generator"
    done = run_generator(tmp_path, CONFIG, out)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""

    names = {
        "näs daily": "salvage@n\\xc3\\xa4s\\x20daily.timer",
        "weekly": "salvage@weekly.timer",
        "plain": "salvage@plain.timer",
    }
    wants = out / "timers.target.wants"
    assert sorted(p.name for p in wants.iterdir()) == sorted(names.values())
    for link in wants.iterdir():
        assert os.readlink(link) == "/usr/lib/systemd/system/salvage@.timer"

    def settings_of(tide):
        text = (out / f"{names[tide]}.d" / "schedule.conf").read_text(encoding="utf-8")
        return [line for line in text.splitlines() if not line.startswith("#")]

    assert settings_of("näs daily") == [
        "[Timer]",
        "OnCalendar=",
        "OnCalendar=*-*-* 03:00",
        "RandomizedDelaySec=1800s",
        "Persistent=true",
    ]
    assert settings_of("weekly")[2:] == [
        "OnCalendar=Sun 04:00",
        "RandomizedDelaySec=0s",
        "Persistent=false",
    ]
    assert settings_of("plain")[2] == "OnCalendar=daily"


def test_generator_makes_the_metrics_and_state_directories_writable_for_the_services(tmp_path):
    out = tmp_path / "generator"
    assert run_generator(tmp_path, CONFIG, out).returncode == 0
    for service in ("salvage.service", "salvage@.service"):  # the template: every tide
        text = (out / f"{service}.d" / "paths.conf").read_text(encoding="utf-8")
        assert [line for line in text.splitlines() if not line.startswith("#")] == [
            "[Service]",
            'ReadWritePaths="-/var/lib/prometheus/node-exporter"',
            'ReadWritePaths="-/srv/salvage 100%%"',
        ]

    # The default state directory is the units' StateDirectory=: nothing to add.
    out = tmp_path / "default"
    assert run_generator(tmp_path, "[tides.daily]\n", out).returncode == 0
    assert not list(out.glob("salvage*.service.d"))


def test_generator_with_a_bad_configuration_says_why_and_writes_nothing(tmp_path):
    out = tmp_path / "generator"
    done = run_generator(tmp_path, '[tides.nightly]\nschedul = "daily"\n', out)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"salvage-generator: {tmp_path}/salvage.toml: tides.nightly.schedul: unknown key"
        ' (did you mean "schedule"?); no timers'
    ]
    assert not out.exists()


@needs_analyze
def test_generator_skips_a_tide_whose_schedule_systemd_cannot_read(tmp_path):
    out = tmp_path / "generator"
    config = '[tides.typo]\nschedule = "every day at 3"\n[tides.good]\nschedule = "03:00"\n'
    done = run_generator(tmp_path, config, out)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"salvage-generator: {tmp_path}/salvage.toml: tides.typo.schedule: 'every day at 3' is"
        " not a systemd calendar expression (see `man systemd.time`); no timer for this tide"
    ]
    # No timer for it (the template's daily would hide the typo); the other tide has its own.
    assert [p.name for p in (out / "timers.target.wants").iterdir()] == ["salvage@good.timer"]
    assert not (out / "salvage@typo.timer.d").exists()


@needs_analyze
def test_generator_run_by_systemd_says_it_in_the_kernel_log(tmp_path, monkeypatch):
    """Under systemd a generator's stderr is /dev/null: its lines go to /dev/kmsg (here a
    file in its place), at priority err, whence journald takes them."""
    kmsg = tmp_path / "kmsg"
    kmsg.touch()
    monkeypatch.setattr(generator, "KMSG", str(kmsg))
    monkeypatch.setenv("SYSTEMD_SCOPE", "system")
    config = tmp_path / "salvage.toml"
    config.write_text('[tides.typo]\nschedule = "every day at 3"\n')
    config.chmod(0o600)
    monkeypatch.setenv("SALVAGE_CONFIG", str(config))
    assert generator.main([str(tmp_path / "out")]) == 1
    assert kmsg.read_text() == (
        f"<3>salvage-generator: {config}: tides.typo.schedule: 'every day at 3' is not a"
        " systemd calendar expression (see `man systemd.time`); no timer for this tide\n"
    )


@needs_analyze
def test_units_and_generator_output_pass_systemd_analyze_verify(tmp_path):
    # A root of its own: the host's units, the salvage files where the package puts them,
    # and the generator's output where `verify` reads drop-ins and wants (same format).
    root = tmp_path / "root"
    shutil.copytree("/usr/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True)
    for unit in ("salvage.service", "salvage@.service", "salvage@.timer"):
        shutil.copy(UNITS / unit, root / "usr/lib/systemd/system" / unit)
    (root / "usr/bin").mkdir(parents=True)
    (root / "usr/bin/salvage").write_text("#!/bin/sh\n")
    (root / "usr/bin/salvage").chmod(0o755)
    done = run_generator(tmp_path, CONFIG, root / "etc/systemd/system")
    assert done.returncode == 0, done.stderr

    timers = sorted(p.name for p in (root / "etc/systemd/system/timers.target.wants").iterdir())
    services = [t.replace(".timer", ".service") for t in timers]
    verify = subprocess.run(
        [ANALYZE, "verify", f"--root={root}", "salvage.service", *services, *timers],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (verify.returncode, verify.stdout + verify.stderr) == (0, "")

    # It does look at them: a schedule systemd cannot read is reported.
    drop_in = root / "etc/systemd/system/salvage@weekly.timer.d/schedule.conf"
    drop_in.write_text(drop_in.read_text().replace("Sun 04:00", "Sun 25:00"))
    verify = subprocess.run(
        [ANALYZE, "verify", f"--root={root}", "salvage@weekly.timer"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "Failed to parse calendar specification" in verify.stderr


@needs_analyze
@pytest.mark.parametrize("unit", ["salvage.service", "salvage@.service"])
def test_service_hardening_scores_at_most_2_5(unit):
    done = subprocess.run(
        [ANALYZE, "security", "--offline=yes", str(UNITS / unit)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    score = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", done.stdout)
    assert score, done.stdout + done.stderr
    assert float(score.group(1)) <= 2.5


def test_both_services_differ_only_in_what_they_run():
    def settings_of(unit):
        skip = ("#", "Description=", "ExecStart=")
        lines = (UNITS / unit).read_text().splitlines()
        return [line for line in lines if line and not line.startswith(skip)]

    assert settings_of("salvage.service") == settings_of("salvage@.service")
    assert "ExecStart=/usr/bin/salvage run\n" in (UNITS / "salvage.service").read_text()
    assert (
        'ExecStart=/usr/bin/salvage run --if-configured --tide "%I"'
        in (UNITS / "salvage@.service").read_text()
    )


@pytest.mark.parametrize("unit", ["salvage.service", "salvage@.service"])
def test_services_stop_before_docker_and_dbus(unit):
    after = [line for line in (UNITS / unit).read_text().splitlines() if line.startswith("After=")]
    assert after and {"docker.service", "dbus.service"} <= set(after[0][6:].split())


# --- a removed tide -------------------------------------------------------------------------

TRIGGERS = (
    "OnCalendar=",
    "OnActiveSec=",
    "OnBootSec=",
    "OnStartupSec=",
    "OnUnitActiveSec=",
    "OnUnitInactiveSec=",
    "OnClockChange=",
    "OnTimezoneChange=",
)


@needs_analyze
def test_a_removed_tides_timer_has_no_schedule(tmp_path):
    """The template fires only by the generator's drop-in: once a tide is gone from the
    configuration (and daemon-reload ran the generator), its timer has nothing to fire on."""
    template = (UNITS / "salvage@.timer").read_text().splitlines()
    assert [line for line in template if line.startswith(TRIGGERS)] == []
    root = tmp_path / "root"
    shutil.copytree("/usr/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True)
    for unit in ("salvage@.service", "salvage@.timer"):
        shutil.copy(UNITS / unit, root / "usr/lib/systemd/system" / unit)
    assert run_generator(tmp_path, "[tides.kept]\n", root / "etc/systemd/system").returncode == 0
    verify = subprocess.run(
        [ANALYZE, "verify", f"--root={root}", "salvage@old.timer"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "lacks value setting" in verify.stderr  # systemd refuses to arm it
    assert not (root / "etc/systemd/system/timers.target.wants/salvage@old.timer").exists()


def test_a_removed_tides_service_says_so_and_exits_0(tmp_path):
    config = tmp_path / "salvage.toml"
    config.write_text(f'state_directory = "{tmp_path}/state"\n[tides.kept]\n')
    config.chmod(0o600)
    env = dict(os.environ, PYTHONPATH=str(ROOT), DOCKER_HOST=f"unix://{tmp_path}/none.sock")

    def run(*args):
        return subprocess.run(
            [sys.executable, "-m", "salvage", "-c", str(config), "run", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    done = run("--if-configured", "--tide", "old")  # what salvage@old.service runs
    assert (done.returncode, done.stderr.splitlines()) == (
        0,
        [
            f'warning: tide "old": not in {config} (removed?): nothing to do;'
            " `systemctl daemon-reload` removes its timer"
        ],
    )
    assert run("--tide", "old").returncode == 2  # by hand, a typo is an error


# --- the journal ----------------------------------------------------------------------------


def test_errors_reach_the_journal_at_priority_err(tmp_path):
    """stderr is the journal when JOURNAL_STREAM names it (device:inode)."""
    stderr = tmp_path / "stderr"
    stderr.touch()
    info = stderr.stat()
    for journal, expected in ((f"{info.st_dev}:{info.st_ino}", "<3>error: "), ("1:1", "error: ")):
        env = dict(os.environ, JOURNAL_STREAM=journal, PYTHONPATH=str(ROOT))
        with open(stderr, "wb") as out:
            code = subprocess.run(
                [sys.executable, "-m", "salvage", "-c", str(tmp_path / "missing.toml"), "run"],
                env=env,
                stderr=out,
                cwd=ROOT,
                timeout=60,
            ).returncode
        assert code == 2
        assert stderr.read_text() == f"{expected}{tmp_path}/missing.toml: no such file\n"


# --- the watchdog ---------------------------------------------------------------------------


def test_watchdog_is_fed_only_while_the_run_makes_progress(monkeypatch):
    sock = NotifySocket()
    monkeypatch.setenv("NOTIFY_SOCKET", sock.address)
    monkeypatch.setenv("WATCHDOG_USEC", "200000")  # a ping every 0.1 s
    service = notify.Service()
    try:
        service.allow(0.5)  # the current step may take 0.5 s
        time.sleep(1.2)
        pings = sock.times("WATCHDOG")
        assert 4 <= len(pings) <= 7, pings
        assert pings[-1] - pings[0] < 0.6  # nothing after the step's time ran out

        service.allow(0.5)  # progress again: fed again
        time.sleep(0.3)
        assert sock.times("WATCHDOG")[-1] > time.time() - 0.2
    finally:
        service.stopping(0)
        sock.close()


def test_watchdog_meant_for_another_process_is_not_fed(monkeypatch):
    sock = NotifySocket()
    monkeypatch.setenv("NOTIFY_SOCKET", sock.address)
    monkeypatch.setenv("WATCHDOG_USEC", "200000")
    # Any pid but this one's: as a container's first process this test is pid 1 itself.
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid() + 1))
    service = notify.Service()
    service.status("ünïcode")
    time.sleep(0.5)
    service.stopping(0)
    sock.close()
    assert sock.values("WATCHDOG") == []
    assert sock.values("STATUS") == ["ünïcode"]


VERIFY_CONFIG = """
[tides.daily]
schedule = "*-*-* 03:00"
verify_schedule = "Sat 05:00"
randomized_delay = "10m"
[tides.plain]
"""


def test_a_tides_verify_schedule_is_a_verify_timer_of_its_own(tmp_path):
    out = tmp_path / "generator"
    done = run_generator(tmp_path, VERIFY_CONFIG, out)
    assert (done.returncode, done.stderr) == (0, "")
    wants = {p.name: os.readlink(p) for p in (out / "timers.target.wants").iterdir()}
    assert wants == {
        "salvage@daily.timer": "/usr/lib/systemd/system/salvage@.timer",
        "salvage@plain.timer": "/usr/lib/systemd/system/salvage@.timer",
        "salvage-verify@daily.timer": "/usr/lib/systemd/system/salvage-verify@.timer",
    }  # plain has no verify_schedule: no verify timer
    text = (out / "salvage-verify@daily.timer.d" / "schedule.conf").read_text()
    settings = [line for line in text.splitlines() if not line.startswith("#")]
    assert settings == [
        "[Timer]",
        "OnCalendar=",
        "OnCalendar=Sat 05:00",
        "RandomizedDelaySec=600s",
        "Persistent=true",
    ]
    for service in ("salvage@.service", "salvage-verify@.service"):  # no directories to open
        assert not (out / f"{service}.d").exists()


@needs_analyze
def test_the_verify_units_pass_systemd_analyze_verify(tmp_path):
    root = tmp_path / "root"
    shutil.copytree("/usr/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True)
    for unit in (
        "salvage-verify@.service",
        "salvage-verify@.timer",
        "salvage@.timer",
        "salvage@.service",
    ):
        shutil.copy(UNITS / unit, root / "usr/lib/systemd/system" / unit)
    (root / "usr/bin").mkdir(parents=True)
    (root / "usr/bin/salvage").write_text("#!/bin/sh\n")
    (root / "usr/bin/salvage").chmod(0o755)
    assert run_generator(tmp_path, VERIFY_CONFIG, root / "etc/systemd/system").returncode == 0
    verify = subprocess.run(
        [
            ANALYZE,
            "verify",
            f"--root={root}",
            "salvage-verify@daily.timer",
            "salvage-verify@daily.service",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (verify.returncode, verify.stdout + verify.stderr) == (0, "")
    security = subprocess.run(
        [ANALYZE, "security", "--offline=yes", str(UNITS / "salvage-verify@.service")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    score = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", security.stdout)
    assert score and float(score.group(1)) <= 2.5, security.stdout + security.stderr


@needs_analyze
def test_a_verify_schedule_systemd_cannot_read_gets_its_tide_no_timer(tmp_path):
    out = tmp_path / "generator"
    done = run_generator(tmp_path, VERIFY_CONFIG.replace("Sat 05:00", "Sat 25:00"), out)
    assert done.returncode == 1
    assert "tides.daily.verify_schedule: 'Sat 25:00' is not a systemd calendar" in done.stderr
    assert sorted(p.name for p in (out / "timers.target.wants").iterdir()) == [
        "salvage@plain.timer"
    ]
