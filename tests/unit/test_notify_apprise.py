"""kind = "apprise": its URLs, and a missing module as one configuration problem."""

from __future__ import annotations

import sys

import pytest

from salvage.config.validate import validate


def test_kind_apprise_without_its_module_is_one_config_problem(monkeypatch):
    monkeypatch.setitem(sys.modules, "apprise", None)  # as if it were not installed
    raw = {"notify": [{"kind": "apprise", "url": "json://127.0.0.1:9/x"}]}
    config, problems = validate(raw, "/etc/s.toml")
    assert config is None
    assert [str(p) for p in problems] == [
        "/etc/s.toml: notify[0].url: needs the Python module apprise, which is not installed"
        " (Debian, Ubuntu: apt install apprise; elsewhere: pip install apprise in salvage's"
        " environment)"
    ]


def test_kind_apprise_takes_its_own_schemes_and_the_others_only_http():
    pytest.importorskip("apprise")
    ok = {"kind": "apprise", "url": "json://127.0.0.1:9/x"}
    unknown = {"kind": "apprise", "url": "nosuchservice://x"}
    ftp = {"kind": "webhook", "url": "ftp://host/x"}
    config, problems = validate({"notify": [ok, unknown, ftp]}, "/s.toml")
    assert [str(p) for p in problems] == [
        "/s.toml: notify[1].url: not a URL that Apprise knows (see its list of services)",
        "/s.toml: notify[2].url: must be an http:// or https:// URL",
    ]
