"""One salvage at a time: the lock file in the state directory (real flock, no engine)."""

from __future__ import annotations

import os

import pytest

from salvage import lock


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
