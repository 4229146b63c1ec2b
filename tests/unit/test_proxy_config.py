"""`salvage proxy-config`: the allow-list follows the configuration's host paths, and the
shipped example is exactly what it prints for examples/salvage.toml. (The proxy itself is
tested with HAProxy in tests/faults/test_socket_proxy.py.)"""

from pathlib import Path

import pytest

from salvage.actions.proxy_config import ProxyConfigError, host_paths, render
from salvage.config import load
from salvage.config.validate import validate

ROOT = Path(__file__).resolve().parents[2]


def test_the_shipped_example_is_what_salvage_prints_for_the_example_configuration():
    printed = render(load(str(ROOT / "examples/salvage.toml")))
    assert (ROOT / "examples/socket-proxy/haproxy.cfg").read_text() == printed, (
        "run: salvage -c examples/salvage.toml proxy-config > examples/socket-proxy/haproxy.cfg"
    )


def _config(cranes):
    config, problems = validate({"cranes": cranes}, "salvage.toml")
    assert problems == [], [str(p) for p in problems]
    return config


def test_only_the_configured_host_paths_may_be_bound(tmp_path):
    secret = tmp_path / "restic-password"
    config = _config(
        {
            "restic": {
                "image": "crane-restic",
                "secrets": {"RESTIC_PASSWORD": str(secret)},
                "mounts": {"/srv/backups": "/salvage/target", "cache": "/cache"},
            }
        }
    )
    assert host_paths(config) == (["/srv/backups", "/var/backups/salvage"], [str(secret)])
    binds = next(line for line in render(config).splitlines() if '"binds"' in line)
    assert "(?-i:/srv/backups)" in binds and f'"((?-i:{secret})):[^":]*:ro"' in binds
    assert "cache" not in binds  # a volume: allowed as any volume is


def test_a_path_that_json_would_escape_is_one_clear_error():
    config = _config({"odd": {"image": "x", "mounts": {'/srv/"quoted"': "/t"}}})
    with pytest.raises(ProxyConfigError, match=r'^/srv/"quoted": only letters'):
        render(config)
