"""`salvage check` reads each tide's schedule as systemd will (systemd-analyze calendar)."""

from __future__ import annotations

import shutil

import pytest


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed")
def test_check_reports_a_schedule_systemd_cannot_read(salvage):
    salvage.use_tar(tide='schedule = "Mon..Fri 25:00"')
    done = salvage("check")
    assert done.returncode == 2
    mine = [line for line in done.stderr.splitlines() if ".schedule:" in line]
    assert mine == [
        f"error: {salvage.config}: tides.{salvage.tide}.schedule: 'Mon..Fri 25:00' is not a"
        " systemd calendar expression (see `man systemd.time`)"
    ]

    salvage.use_tar(tide='schedule = "Mon..Fri 03:00"\nrandomized_delay = "15m"')
    assert ".schedule:" not in salvage("check").stderr
