"""`status` and `history` run by a user who may not read the run history: one line that says
so, and how to read it (sudo, or the group salvage, which may read history.sqlite)."""

from __future__ import annotations

import os
import shutil
import stat

import pytest
from support import unprivileged

from salvage.core.results import TideResult, VolumeResult
from salvage.report import history
from salvage.report.history import History

pytestmark = pytest.mark.skipif(bool(unprivileged.why_not()), reason=str(unprivileged.why_not()))


@pytest.fixture
def shared():
    directory = unprivileged.shared_directory()
    yield directory
    shutil.rmtree(directory)


def _recorded(state) -> None:
    result = TideResult("daily", run_id="r1", trigger="timer", started=1_790_000_000.0)
    store = History(str(state))
    store.run_started(result, "box")
    result.volumes = [VolumeResult("shop_db", True, group="g", crane="tar", seconds=2.0)]
    result.ended = result.started + 5
    store.run_done(result)


def test_status_and_history_say_permission_denied_and_how_to_read_it(shared):
    state = shared / "state"
    state.mkdir(mode=0o700)
    _recorded(state)
    state.chmod(0o700)  # as a state directory of an older salvage, or of a hand install
    config = unprivileged.config_for_nobody(shared, f'state_directory = "{state}"\n')

    for command in ("status", "history"):
        done = unprivileged.run("-c", str(config), command)
        assert (done.returncode, done.stdout) == (1, ""), done.stderr
        assert done.stderr.splitlines() == [
            f"error: {state}/history.sqlite: permission denied: the run history is readable by"
            " root and the group salvage: run this with sudo, or join the group"
            " (sudo usermod -aG salvage $USER, then log in again)"
        ]


def test_a_member_of_the_history_files_group_reads_it(shared):
    """The packages' layout: the state directory 0711, history.sqlite 0640 of the group
    (here nobody's own group stands for salvage)."""
    state = shared / "state"
    state.mkdir()
    _recorded(state)
    state.chmod(0o711)
    os.chown(state / "history.sqlite", 0, unprivileged.NOBODY)
    (state / "history.sqlite").chmod(0o640)
    (state / "record.json").write_text("{}")
    (state / "record.json").chmod(0o600)
    config = unprivileged.config_for_nobody(shared, f'state_directory = "{state}"\n')

    done = unprivileged.run("-c", str(config), "history")
    assert done.returncode == 0, done.stderr
    assert "daily  success" in done.stdout and "shop_db" in done.stdout
    assert "last run: " in unprivileged.run("-c", str(config), "status").stdout
    # An empty file, as the packages make it before the first run: nothing recorded yet.
    (state / "history.sqlite").write_bytes(b"")
    done = unprivileged.run("-c", str(config), "history")
    assert (done.returncode, done.stdout, done.stderr) == (0, "no run recorded\n", "")


def test_a_new_history_file_is_the_groups_to_read(shared, monkeypatch):
    monkeypatch.setattr(history, "GROUP", "nogroup")  # stands for salvage
    _recorded(shared / "state")
    info = os.stat(shared / "state" / "history.sqlite")
    assert (info.st_gid, stat.S_IMODE(info.st_mode)) == (unprivileged.NOBODY, 0o640)
