"""`salvage proxy-config`: the allowances follow the configuration's images, host paths and
volume mounts, and the shipped example is exactly what it prints for examples/salvage.toml.
(The proxy itself, HAProxy with these rules, is tested in tests/faults/test_socket_proxy.py.)"""

import json
from pathlib import Path

import pytest

from salvage.actions.proxy_config import (
    BODY_CAP,
    DEBIAN_RULES,
    RULES,
    ProxyConfigError,
    allowances,
    host_paths,
    render,
)
from salvage.config import load
from salvage.config.validate import validate

ROOT = Path(__file__).resolve().parents[2]


def test_the_shipped_example_is_what_salvage_prints_for_the_example_configuration():
    printed = render(load(str(ROOT / "examples/salvage.toml")), DEBIAN_RULES)
    assert (ROOT / "examples/socket-proxy/haproxy.cfg").read_text() == printed, (
        "run: salvage -c examples/salvage.toml proxy-config"
        f" --rules {DEBIAN_RULES} > examples/socket-proxy/haproxy.cfg"
    )


def test_the_rules_ship_beside_the_module_and_the_config_loads_them():
    assert RULES.is_file() and "salvage-check" in RULES.read_text()
    printed = render(load(str(ROOT / "examples/salvage.toml")))
    assert f'lua-load "{RULES}"' in printed


def _config(cranes):
    config, problems = validate({"cranes": cranes}, "salvage.toml")
    assert problems == [], [str(p) for p in problems]
    return config


def _allowed(config) -> dict:
    """The allowances as HAProxy's rules get them: the one argument of the check."""
    (line,) = [x for x in render(config).splitlines() if "lua.salvage-check" in x]
    return json.loads(line.split("'")[1])


def test_only_the_configured_host_paths_images_and_volume_mounts_are_allowed(tmp_path):
    secret = tmp_path / "restic-password"
    config = _config(
        {
            "restic": {
                "image": "registry.example:5000/crane-restic:1.2",
                "secrets": {"RESTIC_PASSWORD": str(secret)},
                "mounts": {"/srv/backups": "/salvage/target", "cache": "/cache"},
            }
        }
    )
    assert host_paths(config) == (["/srv/backups", "/var/backups/salvage"], [str(secret)])
    allowed = _allowed(config)
    assert allowed == allowances(config)
    assert "registry.example:5000/crane-restic:1.2" in allowed["images"]
    assert ["registry.example:5000/crane-restic", "1.2"] in allowed["pulls"]
    # exactly the bind strings salvage sends: read-write targets, read-only secrets
    assert "/srv/backups:/salvage/target:rw" in allowed["binds"]
    assert f"{secret}:/run/secrets/RESTIC_PASSWORD:ro" in allowed["binds"]
    assert allowed["volume_mounts"] == [["cache", "/cache"]]
    assert allowed["cap"] == BODY_CAP


def test_an_image_without_a_tag_is_pulled_as_latest():
    allowed = _allowed(_config({"x": {"image": "crane-x"}}))
    assert ["crane-x", "latest"] in allowed["pulls"]


def test_a_path_that_json_would_escape_is_one_clear_error():
    config = _config({"odd": {"image": "x", "mounts": {'/srv/"quoted"': "/t"}}})
    with pytest.raises(ProxyConfigError, match=r'^/srv/"quoted": only letters'):
        render(config)


@pytest.mark.parametrize("value", ['say "hi"', "line\nbreak", "caf\u00e9", "back\\slash"])
def test_a_crane_env_that_json_would_escape_is_one_clear_error(value):
    """A container body with an escape never passes the proxy: say so now, not at 2 am."""
    config = _config({"odd": {"image": "x", "env": {"SCRIPT": value}}})
    with pytest.raises(ProxyConfigError, match=r'^crane "odd": env SCRIPT: a quote'):
        render(config)


def test_a_crane_env_too_large_for_the_proxy_s_cap_is_one_clear_error():
    config = _config({"big": {"image": "x", "env": {"SCRIPT": "x" * BODY_CAP}}})
    with pytest.raises(ProxyConfigError, match=r'^crane "big": env: more than \d+ bytes'):
        render(config)
