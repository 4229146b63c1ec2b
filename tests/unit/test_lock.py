"""One salvage at a time: the lock file in the state directory (real flock, no engine)."""

from __future__ import annotations

import os

import pytest

from salvage.safety import lock


def test_a_second_holder_waits_then_times_out_naming_the_first(tmp_path):
    state = str(tmp_path / "state")
    waits = []
    assert not lock.is_held(state)
    with lock.hold(state, 1):
        assert lock.is_held(state)
        with pytest.raises(lock.LockTimeout) as raised:
            with lock.hold(state, 0.3, waits.append):
                pass
    assert waits == [f"pid {os.getpid()}"]
    assert str(raised.value) == (
        f"another salvage (pid {os.getpid()}) still holds {state}/lock after 0 s"
    )
    assert raised.value.exit_code == 1
    assert not lock.is_held(state)
    with lock.hold(state, 0):  # free again: taken at once
        pass


def test_a_waiter_names_the_holder_who_has_not_written_its_pid_yet(tmp_path):
    """Between a holder's flock and its pid on disk, a waiter must not say "another
    process": it waits a moment for the pid (issue 17 item 9)."""
    import fcntl
    import threading
    import time

    state = tmp_path / "state"
    state.mkdir()
    taken = threading.Event()

    def slow_holder():  # another open file description: its flock excludes ours
        fd = os.open(state / lock.FILE, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        taken.set()
        time.sleep(0.4)  # the moment between taking the lock and writing the pid
        os.pwrite(fd, b"4242\n", 0)
        time.sleep(0.6)
        os.close(fd)

    holder = threading.Thread(target=slow_holder)
    holder.start()
    taken.wait(5)
    waits = []
    with lock.hold(str(state), 10, waits.append):
        pass
    holder.join()
    assert waits == ["pid 4242"]


def test_a_holder_s_garbled_pid_is_named_as_it_reads(tmp_path):
    import fcntl

    state = tmp_path / "state"
    state.mkdir()
    fd = os.open(state / "lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, b"\xff12\n")
        with pytest.raises(lock.LockTimeout, match="^another salvage \\(pid \ufffd12\\) "):
            with lock.hold(str(state), 0):
                pass
    finally:
        os.close(fd)
