"""Restore's pure decisions: what a missing volume is created with, from untrusted
metadata, and which snapshot is the default."""

from __future__ import annotations

import pytest

from salvage.actions.restore import volume_spec
from salvage.actions.snapshots import RestoreError, Snapshot, choose, moment

BOUND = {
    "volume": {
        "name": "data",
        "driver": "local",
        "options": {"type": "none", "o": "bind", "device": "/srv/x"},
        "labels": {"com.docker.compose.project": "shop", "salvage.scratch": "x", "owner": "me"},
    }
}


def test_metadata_gives_labels_but_no_driver_options_by_default():
    driver, options, labels = volume_spec(BOUND, "data", adopt=True, trust=False)
    assert (driver, options) == ("local", {})
    assert labels == {"com.docker.compose.project": "shop", "owner": "me"}


def test_trusted_options_are_used_but_a_copy_never_takes_the_device():
    assert volume_spec(BOUND, "data", adopt=True, trust=True)[1] == BOUND["volume"]["options"]
    driver, options, labels = volume_spec(BOUND, "copy", adopt=False, trust=True)
    assert "device" not in options and labels == {"owner": "me"}


@pytest.mark.parametrize("meta", [{}, {"volume": None}, {"volume": {"options": "x"}}])
def test_odd_metadata_gives_a_plain_volume(meta):
    assert volume_spec(meta, "data", adopt=True, trust=True) == ("local", {}, {})


def test_the_default_snapshot_is_the_newest_consistent_one():
    found = [Snapshot("c", "3", consistent=False), Snapshot("b", "2"), Snapshot("a", "1")]
    assert choose("tar", "v", found, None).id == "b"
    assert choose("tar", "v", found, "latest").id == "b"
    assert choose("tar", "v", found, "c").id == "c"  # named: restored all the same
    with pytest.raises(RestoreError, match="only snapshots marked not consistent"):
        choose("tar", "v", found[:1], None)


def test_before_takes_the_newest_consistent_snapshot_taken_earlier():
    found = [
        Snapshot("d", "2026-11-29T03:00:00.123456789Z"),  # restic's times
        Snapshot("c", "20261128T030000Z", consistent=False),  # the tar crane's
        Snapshot("b", "2026-11-27T03:00:00+00:00"),
        Snapshot("x", "yesterday"),  # not a time: never taken as "before" anything
    ]
    assert choose("restic", "v", found, None, moment("2026-11-29T02:00Z")).id == "b"
    assert choose("restic", "v", found, None, moment("2026-11-30")).id == "d"
    with pytest.raises(RestoreError, match="no snapshot of v taken before 2026-11-27T03:00:00"):
        choose("restic", "v", found, None, moment("2026-11-27T03:00:00Z"))


@pytest.mark.parametrize("text", ["", "soon", "2026-13-01", "29/11/2026"])
def test_a_time_that_is_none_is_said(text):
    assert moment(text) is None


def test_a_restored_marker_never_comes_from_a_backup():
    meta = {"volume": {"labels": {"salvage.restored": "host-a/data", "owner": "me"}}}
    assert volume_spec(meta, "data", adopt=True, trust=False)[2] == {"owner": "me"}
