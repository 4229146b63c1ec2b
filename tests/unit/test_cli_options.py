"""Small things people expect from the command line: `randomized_delay = 0`, `-q`, and a
missing configuration file said as such."""

from __future__ import annotations

import importlib

import pytest
from click.testing import CliRunner

from salvage import cli
from salvage.config.validate import validate
from salvage.systemd.generator import drop_in

loading = importlib.import_module(
    "salvage.config.load"
)  # the module; the package's `load` is its function


@pytest.mark.parametrize("value", [0, "0s", 0.0])
def test_randomized_delay_zero_is_no_delay(value):
    config, problems = validate({"tides": {"daily": {"randomized_delay": value}}}, "s.toml")
    assert problems == []
    assert config.tides["daily"].randomized_delay == 0
    assert "RandomizedDelaySec=0s\n" in drop_in(config.tides["daily"], "s.toml")
    _, problems = validate({"tides": {"daily": {"randomized_delay": -1}}}, "s.toml")
    assert [str(p) for p in problems] == [
        "s.toml: tides.daily.randomized_delay: must be longer than zero, or 0"
    ]
    _, problems = validate({"tides": {"daily": {"crane_timeout": value}}}, "s.toml")
    assert [str(p) for p in problems] == [
        "s.toml: tides.daily.crane_timeout: must be longer than zero"
    ]


def test_an_unknown_tide_without_a_configuration_file_says_no_file_was_found(tmp_path, monkeypatch):
    missing = tmp_path / "etc/salvage/salvage.toml"
    monkeypatch.setattr(loading, "DEFAULT_PATH", str(missing))
    monkeypatch.delenv("SALVAGE_CONFIG", raising=False)
    for args in (["run", "--tide", "nightly"], ["plan", "--tide", "nightly"]):
        result = CliRunner().invoke(cli.main, args)
        assert result.exit_code == 2
        assert result.output.splitlines() == [
            f'error: no tide named "nightly": no configuration file was found (looked for'
            f" {missing}; --config or SALVAGE_CONFIG name another), so the only tide is the"
            ' built-in "daily"'
        ]


def test_quiet_and_verbose_together_is_a_usage_error():
    result = CliRunner().invoke(cli.main, ["-q", "-v", "status"])
    assert result.exit_code == 2
    assert "--verbose and --quiet contradict each other" in result.output
