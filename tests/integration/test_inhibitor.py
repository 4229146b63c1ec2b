"""The logind inhibitor lock, against a real dbus-daemon with python-dbusmock's logind
template (which lists a lock until its last file descriptor is closed), and a real engine."""

from __future__ import annotations

import os
import subprocess
import time

import pytest
from support.background import Background
from support.harness import events, running_cranes
from support.systembus import DENY_INHIBIT, SystemBus

from salvage.systemd import inhibit

pytestmark = pytest.mark.boundary  # docs/testing.md: run again on the distribution's libraries


@pytest.fixture
def bus():
    with SystemBus() as system_bus:
        yield system_bus.start().start_logind()


def config(salvage, script: str, extra: str = "") -> None:
    salvage.use_script(script, top=extra)


def crane_running(api, tide: str) -> bool:
    return bool(running_cranes(api, tide))


def test_block_lock_is_held_exactly_while_containers_are_down(stack, salvage, api, bus):
    volume = stack.volume("data")
    app = stack.container("app", [volume], labels={f"salvage.tide.{stack.tide}": f"g:{volume}"})
    config(salvage, "sleep 2")

    since = time.time()
    run = Background(
        salvage, "run", "--tide", stack.tide, env={"DBUS_SYSTEM_BUS_ADDRESS": bus.address}
    )
    samples = []  # (when, app's state before, salvage's locks, app's state after)
    while run.proc.poll() is None:
        before = api.inspect_container(app)["State"]["Status"]
        locks = bus.salvage_locks()
        samples.append((time.time(), before, locks, api.inspect_container(app)["State"]["Status"]))
        time.sleep(0.05)
    assert run.wait() == 0, run.stderr

    # Down across a query: the block lock was there.
    down = [locks for _, before, locks, after in samples if before == after == "exited"]
    assert len(down) > 5
    for locks in down:
        blocks = [lock for lock in locks if lock[3] == "block"]
        assert [lock[0] for lock in blocks] == ["shutdown:sleep"], locks
        assert f"backing up {volume}" in blocks[0][2]
    # Held only around the time Docker saw the container down (stop .. start).
    seen = [(n, a, t / 1e9) for n, a, t in events(api, since) if n == app]
    stopped = min(t for _, a, t in seen if a == "kill")
    started = max(t for _, a, t in seen if a == "start")
    held = [when for when, _, locks, _ in samples if any(lk[3] == "block" for lk in locks)]
    assert stopped - 0.5 < min(held) and max(held) < started + 0.5
    # The delay lock (to hear of a shutdown) is held for the tide, and nothing after it.
    assert any(lk[3] == "delay" for _, _, locks, _ in samples for lk in locks)
    assert bus.salvage_locks() == []


def test_prepare_for_shutdown_mid_crane_kills_it_and_restores(stack, salvage, api, bus):
    volume = stack.volume("data")
    label = f"salvage.tide.{stack.tide}"
    app = stack.container("app", [volume], labels={label: f"g:{volume}"})
    pauser = stack.container("pauser", [volume], labels={"salvage.action": "pause"})
    before = stack.states()
    config(salvage, "sleep 300")

    since = time.time()
    run = Background(
        salvage, "run", "--tide", stack.tide, env={"DBUS_SYSTEM_BUS_ADDRESS": bus.address}
    )
    deadline = time.monotonic() + 60
    while not crane_running(api, stack.tide):
        assert run.proc.poll() is None and time.monotonic() < deadline, run.stderr
        time.sleep(0.1)
    assert len(bus.salvage_locks()) == 2  # block and delay
    announced = time.time()
    bus.emit_prepare("PrepareForShutdown", True)

    assert run.wait(timeout=60) == 1
    assert time.time() - announced < 15
    crane = f"salvage-crane-{volume}-"
    crane_died = [
        t / 1e9 for n, a, t in events(api, since) if (n or "").startswith(crane) and a == "die"
    ]
    assert crane_died and crane_died[0] > announced
    assert not api.containers(all=True, filters={"label": f"salvage.crane.tide={stack.tide}"})
    assert stack.states() == before  # app running again, pauser unpaused, same ids
    assert [e for e in events(api, since) if e[0] == app and e[1] == "start"]
    assert bus.salvage_locks() == []
    assert "warning: the host is about to shut down: interrupting the backup" in run.stderr
    assert "; interrupted: shutdown" in run.stderr
    assert pauser in before


def test_without_a_system_bus_a_warning_under_systemd_and_the_run_completes(
    stack, salvage, tmp_path
):
    volume = stack.volume("data")
    stack.container("app", [volume], labels={f"salvage.tide.{stack.tide}": f"g:{volume}"})
    config(salvage, "true")
    said = (
        f"no logind inhibitor lock (no system bus at unix:path={tmp_path}/no-bus:"
        " No such file or directory): nothing holds off shutdown or sleep while containers"
        " are down"
    )
    # Under systemd (a unit sets INVOCATION_ID), a warning; elsewhere, a notice.
    for invocation, line in (("8f2c0d6e5a1b4c3d9e7f6a5b4c3d2e1f", f"warning: {said}"), ("", said)):
        env = {
            "DBUS_SYSTEM_BUS_ADDRESS": f"unix:path={tmp_path}/no-bus",
            "INVOCATION_ID": invocation,
        }
        run = Background(salvage, "run", "--tide", stack.tide, env=env)
        assert run.wait() == 0, run.stderr
        assert [line for line in run.stderr.splitlines() if "inhibitor" in line] == [line]


def test_access_denied_a_warning_and_the_run_completes(stack, salvage):
    volume = stack.volume("data")
    stack.container("app", [volume], labels={f"salvage.tide.{stack.tide}": f"g:{volume}"})
    config(salvage, "true")
    with SystemBus(policy=DENY_INHIBIT) as denying:
        denying.start().start_logind()
        run = Background(
            salvage, "run", "--tide", stack.tide, env={"DBUS_SYSTEM_BUS_ADDRESS": denying.address}
        )
        assert run.wait() == 0, run.stderr
        assert denying.salvage_locks() == []
    warnings = [line for line in run.stderr.splitlines() if "inhibitor" in line]
    assert len(warnings) == 1
    assert "Inhibit: org.freedesktop.DBus.Error.AccessDenied" in warnings[0]


def test_required_lock_without_logind_touches_nothing(stack, salvage, api):
    volume = stack.volume("data")
    app = stack.container("app", [volume], labels={f"salvage.tide.{stack.tide}": f"g:{volume}"})
    config(salvage, "true", extra="[inhibit]\nrequired = true")
    before = stack.states()
    with SystemBus() as no_logind:  # a system bus, but nobody owns org.freedesktop.login1
        no_logind.start()
        since = time.time()
        run = Background(
            salvage, "run", "--tide", stack.tide, env={"DBUS_SYSTEM_BUS_ADDRESS": no_logind.address}
        )
        assert run.wait() == 1
    assert stack.states() == before
    assert not [e for e in events(api, since) if e[0] == app]
    errors = [line for line in run.stderr.splitlines() if line.startswith("error: group")]
    assert errors == [
        f"error: group {volume}: no logind inhibitor lock ([inhibit] required): Inhibit:"
        " org.freedesktop.DBus.Error.ServiceUnknown: The name org.freedesktop.login1 was not"
        " provided by any .service files"
    ]


def test_lock_is_not_inherited_by_children(bus, monkeypatch):
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", bus.address)
    logind = inhibit.Logind(lambda what, starting: None)
    try:
        fd = logind.inhibit("shutdown", "test", "block")
        assert len(bus.salvage_locks()) == 1
        # A child that would keep every inheritable descriptor open.
        child = subprocess.Popen(["sleep", "30"], close_fds=False)
        try:
            os.close(fd)
            deadline = time.monotonic() + 5
            while bus.salvage_locks() and time.monotonic() < deadline:
                time.sleep(0.05)
            assert bus.salvage_locks() == []
            assert child.poll() is None  # released while the child lives
        finally:
            child.kill()
            child.wait()
    finally:
        logind.close()


def test_the_system_bus_going_away_mid_run_is_quiet(stack, salvage, api, bus):
    """At shutdown without After=dbus.service, dbus could stop first: the run goes on, and
    the connection's end (dbus-next's EOFError) is no traceback in the journal."""
    volume = stack.volume("data")
    stack.container("app", [volume], labels={f"salvage.tide.{stack.tide}": f"g:{volume}"})
    config(salvage, "touch /out/started; while [ ! -e /out/go ]; do sleep 0.05; done")
    salvage.backups.mkdir(exist_ok=True)
    run = Background(
        salvage, "run", "--tide", stack.tide, env={"DBUS_SYSTEM_BUS_ADDRESS": bus.address}
    )
    deadline = time.monotonic() + 120
    while not (salvage.backups / "started").exists():
        assert run.proc.poll() is None and time.monotonic() < deadline, run.stderr
        time.sleep(0.05)
    assert bus.salvage_locks()  # the locks are held, over the bus
    bus.stop()
    (salvage.backups / "go").touch()
    assert run.wait() == 0, run.stderr
    assert "Traceback" not in run.stderr and "EOFError" not in run.stderr, run.stderr
