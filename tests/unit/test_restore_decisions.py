"""Restore's pure decisions: what a missing volume is created with, from untrusted
metadata, and which snapshot is the default."""

from __future__ import annotations

import pytest

from salvage.actions.restore import volume_spec
from salvage.actions.snapshots import RestoreError, Snapshot, choose

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
