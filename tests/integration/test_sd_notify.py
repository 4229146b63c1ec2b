"""salvage under systemd, without systemd: the real datagram stream on a NOTIFY_SOCKET
(READY, STATUS, WATCHDOG, STOPPING...), the journal's priority prefixes, the one-run lock,
and SIGTERM, against a real engine."""

from __future__ import annotations

import os
import re
import signal
import statistics
import time

import pytest
from support.background import Background
from support.harness import ROOT, SCRIPT_CRANE, events, running_cranes
from support.notify_socket import NotifySocket

from salvage.safety import lock

pytestmark = pytest.mark.boundary  # docs/testing.md: run again on the distribution's libraries


@pytest.fixture
def notify():
    sock = NotifySocket()
    yield sock
    sock.close()


def script_config(salvage, script: str, tide: str = "", extra: str = "") -> None:
    """The test's tide on a crane that runs `script` (sh) with each volume mounted."""
    salvage.write_config(
        f"""
        machine = "testhost"
        state_directory = "{salvage.tmp}/state"
        {extra}
        [tides."{tide or salvage.tide}"]
        crane = "script"
        [cranes.script]
        image = "{SCRIPT_CRANE}"
        pull = "never"
        env = {{ CRANE_SCRIPT = "{script}" }}
        """
    )


def down_events(api, since: float, names) -> list:
    """When Docker began taking each of these containers down (kill/pause), in order."""
    return [
        (n, a, t / 1e9) for n, a, t in events(api, since) if n in names and a in ("kill", "pause")
    ]


def test_ready_status_watchdog_and_stopping_for_a_two_group_run(stack, salvage, api, notify):
    one, two = stack.volume("one"), stack.volume("two")
    label = f"salvage.tide.{stack.tide}"
    first = stack.container("first", [one], labels={label: f"g:{one}"})
    second = stack.container("second", [two], labels={label: f"g:{two}", "salvage.action": "pause"})
    script_config(salvage, "sleep 1.5")
    planned = salvage.plan("--tide", stack.tide)[0]["groups"]
    groups = [group["name"] for group in planned]
    volumes = {group["name"]: group["volumes"][0] for group in planned}
    assert len(groups) == 2
    before = stack.states()

    since = time.time()
    run = Background(
        salvage,
        "run",
        "--tide",
        stack.tide,
        env={"NOTIFY_SOCKET": notify.address, "WATCHDOG_USEC": "600000"},
    )
    assert run.wait() == 0, run.stderr
    assert stack.states() == before

    # READY once preflight is done, before the first container goes down.
    ready = notify.times("READY")
    went_down = down_events(api, since, {first, second})
    assert went_down, events(api, since)
    assert len(ready) == 1 and ready[0] < went_down[0][2]

    tide = stack.tide
    expected = [f"running tide {tide}", f"tide {tide}: 2 groups, 2 volumes to back up"]
    for number, group in enumerate(groups, 1):
        where = f"tide {tide}, group {number}/2 {group}"
        expected += [
            f"{where}: getting ready, 0 of 1 volumes done",
            f"{where}: stopping or pausing containers",
            f"{where}: backing up {volumes[group]} (crane script), 0 of 1 volumes done",
            f"{where}: containers back, 1 of 1 volumes done",
            f"{where}: done, containers were down <s> s",
        ]
    expected.append(
        f"tide {tide}: 2 volumes backed up, 0 failed, 0 label problems;"
        " containers down <s> s in all; took <s> s"
    )
    statuses = [re.sub(r"\d+\.\d", "<s>", s) for s in notify.values("STATUS")]
    assert statuses == expected

    # WATCHDOG=1 every WATCHDOG_USEC/2 (0.3 s) while the run goes on.
    pings = notify.times("WATCHDOG")
    gaps = [b - a for a, b in zip(pings, pings[1:])]
    assert len(pings) >= 8, pings
    assert 0.25 < statistics.median(gaps) < 0.35 and max(gaps) < 0.6, gaps

    # STOPPING=1 last, and no failure to report.
    last = notify.messages()[-1][1]
    assert last == {"STOPPING": "1"}
    assert not notify.values("EXIT_STATUS") and not notify.values("ERRNO")


def test_non_ascii_tide_name_arrives_as_utf8(stack, salvage, notify):
    tide = f"sauvegarde-été-{stack.prefix}"
    volume = stack.volume("data")
    stack.container("app", [volume], labels={f"salvage.tide.{tide}": f"g:{volume}"})
    script_config(salvage, "true", tide=tide)

    run = Background(salvage, "run", "--tide", tide, env={"NOTIFY_SOCKET": notify.address})
    assert run.wait() == 0, run.stderr

    raw = b"".join(data for _, data in notify.datagrams)
    assert f"STATUS=running tide {tide}".encode() in raw  # UTF-8 bytes, not Latin-1
    statuses = notify.values("STATUS")  # decodes each datagram as UTF-8 or fails
    assert f"tide {tide}, group 1/1 {volume}: stopping or pausing containers" in statuses


def test_without_notify_socket_nothing_is_sent(stack, salvage, notify):
    volume = stack.volume("data")
    stack.container("app", [volume], labels={f"salvage.tide.{stack.tide}": f"g:{volume}"})
    script_config(salvage, "true")
    run = Background(salvage, "run", "--tide", stack.tide, env={"WATCHDOG_USEC": "200000"})
    assert run.wait() == 0, run.stderr
    assert notify.datagrams == []


def test_journal_lines_carry_syslog_priorities(stack, salvage):
    good, bad = stack.volume("good"), stack.volume("bad")
    label = f"salvage.tide.{stack.tide}"
    stack.container("app", [good], labels={label: f"g:{good}"})
    stack.container("other", [bad], labels={label: f"g:{bad}"})
    # The crane fails the "bad" volume only.
    script_config(salvage, "case $SALVAGE_VOLUME_NAME in *-bad) echo broken; exit 3;; esac")

    run = Background(salvage, "run", "--tide", stack.tide, journal=True)
    assert run.wait() == 1, run.stderr
    lines = run.stderr.splitlines()
    assert lines and all(re.match(r"<[3467]>", line) for line in lines), lines
    errors = [line[3:] for line in lines if line.startswith("<3>")]
    assert f'error: volume {bad}: failed: crane "script" exited with 3' in errors
    assert not any(good in line for line in errors)
    summary = f"<6>tide {stack.tide}: 1 volume backed up, 1 failed, 0 label problems;"
    assert [line for line in lines if line.startswith(summary)], lines

    # The same run with stderr on a terminal or a file of its own: no prefixes.
    plain = Background(salvage, "run", "--tide", stack.tide)
    assert plain.wait() == 1
    assert not any(re.match(r"<\d>", line) for line in plain.stderr.splitlines())


def test_second_run_waits_for_the_lock_then_fails_clearly(stack, salvage, api, notify):
    volume = stack.volume("data")
    app = stack.container("app", [volume], labels={f"salvage.tide.{stack.tide}": f"g:{volume}"})
    script_config(salvage, "true", extra="lock_timeout = 2")
    before = stack.states()

    since = time.time()
    with lock.hold(f"{salvage.tmp}/state", 1):  # another salvage holds the lock
        run = Background(
            salvage, "run", "--tide", stack.tide, env={"NOTIFY_SOCKET": notify.address}
        )
        code = run.wait()
    assert code == 1
    errors = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        f"error: another salvage (pid {os.getpid()}) still holds {salvage.tmp}/state/lock after 2 s"
    ]
    assert (
        f"waiting for another salvage (pid {os.getpid()}) to finish (up to 2 s)"
        in notify.values("STATUS")
    )
    # The wait may outlast the unit's start timeout: systemd is asked to extend it.
    assert int(notify.values("EXTEND_TIMEOUT_USEC")[0]) > 2_000_000
    assert notify.values("READY") == []
    assert notify.messages()[-1][1] == {"STOPPING": "1", "EXIT_STATUS": "1", "ERRNO": "110"}
    assert stack.states() == before
    assert not [e for e in events(api, since) if e[0] == app]


def test_second_run_goes_on_when_the_first_ends(stack, salvage, notify):
    volume = stack.volume("data")
    stack.container("app", [volume], labels={f"salvage.tide.{stack.tide}": f"g:{volume}"})
    script_config(salvage, "true")
    with lock.hold(f"{salvage.tmp}/state", 1):
        run = Background(
            salvage, "run", "--tide", stack.tide, env={"NOTIFY_SOCKET": notify.address}
        )
        notify.wait_for("STATUS")
        time.sleep(1)
        released = time.time()
    assert run.wait() == 0, run.stderr
    assert notify.values("STATUS")[0].startswith("waiting for another salvage")
    assert notify.times("READY")[0] >= released
    assert "warning: waiting for another salvage" in run.stderr


def unit_stop_timeout() -> float:
    text = (ROOT / "systemd/salvage@.service").read_text()
    value = re.search(r"^TimeoutStopSec=(\d+)(min|s)?$", text, re.M)
    return int(value.group(1)) * (60 if value.group(2) == "min" else 1)


def test_sigterm_mid_run_restores_every_container_within_the_stop_timeout(
    stack, salvage, api, notify
):
    label = f"salvage.tide.{stack.tide}"
    one, two = stack.volume("one"), stack.volume("two")
    stopper = stack.container("stopper", [one, two], labels={label: f"g:{one},g:{two}"})
    pauser = stack.container("pauser", [one], labels={"salvage.action": "pause"})
    exited = stack.container("exited", [two])
    paused = stack.container("paused", [one])
    api.stop(exited, timeout=1)
    api.pause(paused)
    before = stack.states()
    script_config(salvage, "sleep 300")

    run = Background(salvage, "run", "--tide", stack.tide, env={"NOTIFY_SOCKET": notify.address})
    deadline = time.monotonic() + 60
    while not running_cranes(api, stack.tide):
        assert run.proc.poll() is None and time.monotonic() < deadline, run.stderr
        time.sleep(0.1)
    assert stack.states()[stopper][1] == "exited" and stack.states()[pauser][1] == "paused"

    sent = time.monotonic()
    os.kill(run.pid, signal.SIGTERM)
    code = run.wait()
    took = time.monotonic() - sent

    assert code == 1
    assert stack.states() == before  # same ids, same states: running, paused, exited
    assert took < unit_stop_timeout() / 4, took
    assert not api.containers(all=True, filters={"label": f"salvage.crane.tide={stack.tide}"})
    assert "; interrupted: SIGTERM" in run.stderr
    # systemd hears that it is stopping, and that the restore needs more time.
    assert f"tide {stack.tide}: interrupted (SIGTERM): restoring containers" in notify.values(
        "STATUS"
    )
    assert notify.values("STOPPING") and notify.values("EXTEND_TIMEOUT_USEC")
    assert notify.messages()[-1][1] == {"STOPPING": "1", "EXIT_STATUS": "1"}
