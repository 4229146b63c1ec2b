"""shrink_alert's decision (pure), the crane report's validation, and the config key."""

from __future__ import annotations

import pytest

from salvage.config.validate import validate
from salvage.core.results import VolumeResult
from salvage.crane import backup_report
from salvage.report import shrink


def _result(**reported) -> VolumeResult:
    return VolumeResult("db", True, **reported)


@pytest.mark.parametrize(
    "previous, current, shrunk",
    [
        ({"bytes_read": 1000, "size": 10}, _result(bytes_read=499, size=10), True),
        ({"bytes_read": 1000, "size": 10}, _result(bytes_read=500, size=1), False),  # read counts
        ({"bytes_read": None, "size": 1000}, _result(size=400), True),  # stored, without read
        ({"bytes_read": 1000, "size": 1000}, _result(size=1), False),  # not alike: not compared
        ({"bytes_read": 0, "size": 0}, _result(bytes_read=0), False),  # nothing to shrink from
        (None, _result(bytes_read=1), False),  # the first backup
        ({"bytes_read": 1000, "size": 1}, _result(), False),  # a crane that reports nothing
    ],
)
def test_a_shrink_is_a_fall_below_the_fraction_of_the_previous_good_backup(
    previous, current, shrunk
):
    assert (shrink.why(previous, current, 0.5) is not None) is shrunk


def test_the_words_say_how_much_and_the_threshold():
    said = shrink.why({"bytes_read": 2000, "size": 1}, _result(bytes_read=100), 0.5)
    assert said == (
        "shrank to 100 bytes read from 2000 in the previous good backup"
        " (5%, below shrink_alert 0.5)"
    )


def test_a_good_report_is_taken_and_unknown_keys_ignored():
    raw = b'{"snapshot": "abc123", "bytes_stored": 5, "bytes_read": 7, "files": 1, "new": [1]}'
    assert backup_report.parse(raw) == backup_report.Report("abc123", 5, 7, 1)


@pytest.mark.parametrize("value", [0, 1, 1.5, -0.1, True, "half"])
def test_shrink_alert_is_a_fraction(value):
    config, problems = validate({"tides": {"daily": {"shrink_alert": value}}}, "/etc/s.toml")
    assert config is None
    assert [str(p) for p in problems] == [
        f"/etc/s.toml: tides.daily.shrink_alert: must be a fraction between 0 and 1, such as"
        f" 0.5, not {value!r}"
    ]


def test_shrink_alert_is_off_by_default_and_taken_when_set():
    config, _ = validate({"tides": {"a": {}, "b": {"shrink_alert": 0.5}}}, "/etc/s.toml")
    assert config.tides["a"].shrink_alert is None and config.tides["b"].shrink_alert == 0.5
