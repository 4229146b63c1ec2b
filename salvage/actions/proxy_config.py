"""`salvage proxy-config`: the HAProxy configuration of a Docker socket proxy that lets
through only the calls salvage makes (docs/docker-api.md), for this salvage.toml.

Every request that creates something (a container, a volume, an exec, an image pull) is
read whole (`option http-buffer-request`, up to BODY_CAP bytes) and passes only when the
rules in proxy_rules.lua accept all of it: they parse its JSON body with lua-cjson and
check each key and value against what salvage itself sends, with this configuration's
crane images, host paths and volume mounts as the one argument of the check. Whatever the
rules cannot read or do not know (an escape, a key given twice, an unknown field, a body
over the cap, an error of the script itself) leaves the request unallowed: HAProxy's 403.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Dict, List, Optional, Set, Tuple

from salvage.config import Config
from salvage.config.schema import SECRETS_DIR
from salvage.crane.staging import STAGE_PREFIX
from salvage.engine.cranes import pull_reference
from salvage.engine.volumes import SCRATCH_PREFIX
from salvage.errors import EXIT_CONFIG, SalvageError

# The rules HAProxy loads: shipped in the package, beside this module.
RULES = Path(__file__).with_name("proxy_rules.lua")
# Where Debian's package installs them (the shipped example names this path).
DEBIAN_RULES = "/usr/lib/python3/dist-packages/salvage/actions/proxy_rules.lua"
# The Debian package that gives HAProxy's Lua 5.3 its JSON parser.
JSON_PACKAGE = "lua-cjson"

# The largest request body the proxy reads (docs/docker-api.md, "Fail closed"). salvage's
# own largest is a group's stager: about 0.7 kB and 190 bytes per volume of 64 characters
# (its two binds and its label): 19.4 kB for 100 such volumes, 32 kB for about 165. Next
# come a crane (about 1.5 kB and its configured environment) and an exec (a staging
# check, 1.3 kB; or a pre/post command).
BODY_CAP = 32 * 1024
# A crane's configured environment may take this much of its body.
ENV_ROOM = BODY_CAP - 8 * 1024
# HAProxy reads a body only as far as its buffer holds it (less its rewrite reserve):
# room for the cap and the request's headers.
BUFSIZE = BODY_CAP + 16 * 1024

_PLAIN = re.compile(r"[A-Za-z0-9/_.,+@=~ -]+")  # characters JSON leaves as they are
_IMAGE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/:@-]*")
_TEXT = re.compile(r"[\x20-\x7e]*")  # printable ASCII
_JSON_ESCAPED = re.compile(r'[^\x20-\x7e]|["\\]')

TEMPLATE = """\
# A Docker socket proxy that lets through only the API calls salvage makes
# (docs/docker-api.md), as `salvage proxy-config` prints it for a salvage.toml.
# It needs HAProxy with Lua (Debian's haproxy) and the JSON parser of its rules:
#   apt install haproxy {json_package}
# Run it as a user who can open the Docker socket:
#   SALVAGE_PROXY_SOCKET=/run/salvage-proxy/docker.sock DOCKER_SOCKET=/var/run/docker.sock \\
#     haproxy -f haproxy.cfg
# and give salvage DOCKER_HOST=unix:///run/salvage-proxy/docker.sock.
# Print it again whenever the cranes' images, host paths, volume mounts or secrets change.
global
    log stderr format short local0 warning
    # Request bodies up to {cap} bytes are read whole, with room for their headers.
    tune.bufsize {bufsize}
    # The rules that read what creates something: shipped with salvage (docs/docker-api.md).
    lua-load "{rules}"

defaults
    mode http
    log global
    option httplog
    timeout connect 5s
    # Waiting for a crane (its logs, its exit) can take as long as the crane runs.
    timeout client 7d
    timeout server 7d
    timeout tunnel 7d

frontend docker
    bind "unix@${{SALVAGE_PROXY_SOCKET}}" mode 660
    # Request bodies are read whole before the rules below look at them.
    option http-buffer-request
    # An optional API version prefix, as docker-py sends it (/v1.41/containers/json); not
    # older than 1.24, whose engines took a HostConfig on start.
    acl versioned path_reg ^/v[0-9]
    acl recent path_reg ^/v1\\.(2[4-9]|[3-9][0-9])/
    http-request deny deny_status 403 if versioned !recent
    # Paths as salvage spells them: no dot segment, no empty one, no percent escape (the
    # engine decodes them: a path would mean another) but the `@` of an image's digest.
    acl image_inspect path_reg ^(/v[0-9.]+)?/images/.+/json$
    http-request deny deny_status 403 if {{ path_reg /\\.\\.?(/|$)|// }}
    http-request deny deny_status 403 if {{ path_sub % }} !image_inspect
    http-request deny deny_status 403 if image_inspect {{ path_reg %(?!40) }}

    # Whatever creates something passes only when the rules accept all of it: its method,
    # its query, its body (whole, at most {cap} bytes). Allowed beyond salvage's own
    # volumes and containers, for this configuration: its cranes' images (pulls of them
    # too), bind mounts of their host paths and secrets, their volume mounts.
    acl checked path_reg ^(/v[0-9.]+)?/(containers/create|containers/[^/]+/exec)$
    acl checked path_reg ^(/v[0-9.]+)?/(volumes/create|images/create)$
    http-request deny deny_status 403 if checked {{ req.body_size gt {cap} }}
    http-request lua.salvage-check '{allow}' if checked
    http-request allow if checked {{ var(txn.salvage) -m str allow }}
    http-request deny deny_status 403 if checked

    # No body on start (engines before 1.24 read a HostConfig there).
    acl start path_reg ^(/v[0-9.]+)?/containers/[^/]+/start$
    http-request deny deny_status 403 if start {{ req.hdr(transfer-encoding) -m found }}
    http-request deny deny_status 403 if start {{ req.body_size gt 0 }}

    # discovery and preflight
    http-request allow if {{ method GET }} {{ path_reg ^(/v[0-9.]+)?/(_ping|version)$ }}
    http-request allow if {{ method GET }} {{ path_reg ^(/v[0-9.]+)?/containers/json$ }}
    http-request allow if {{ method GET }} {{ path_reg ^(/v[0-9.]+)?/volumes(/[^/]+)?$ }}
    http-request allow if {{ method GET }} {{ path_reg ^(/v[0-9.]+)?/containers/[^/]+/json$ }}
    # safe states and their reversal
    http-request allow if {{ method POST }} {{ path_reg ^(/v[0-9.]+)?/containers/[^/]+/stop$ }}
    http-request allow if {{ method POST }} {{ path_reg ^(/v[0-9.]+)?/containers/[^/]+/start$ }}
    http-request allow if {{ method POST }} {{ path_reg ^(/v[0-9.]+)?/containers/[^/]+/pause$ }}
    http-request allow if {{ method POST }} {{ path_reg ^(/v[0-9.]+)?/containers/[^/]+/unpause$ }}
    # pre/post commands (their creation is checked above)
    http-request allow if {{ method POST }} {{ path_reg ^(/v[0-9.]+)?/exec/[^/]+/start$ }}
    http-request allow if {{ method GET }} {{ path_reg ^(/v[0-9.]+)?/exec/[^/]+/json$ }}
    # cranes, and restore's helper containers and volumes (their creation is checked above)
    http-request allow if {{ method GET }} image_inspect
    http-request allow if {{ method PUT }} {{ path_reg ^(/v[0-9.]+)?/containers/[^/]+/archive$ }}
    http-request allow if {{ method GET }} {{ path_reg ^(/v[0-9.]+)?/containers/[^/]+/archive$ }}
    http-request allow if {{ method GET }} {{ path_reg ^(/v[0-9.]+)?/containers/[^/]+/logs$ }}
    http-request allow if {{ method POST }} {{ path_reg ^(/v[0-9.]+)?/containers/[^/]+/wait$ }}
    http-request allow if {{ method POST }} {{ path_reg ^(/v[0-9.]+)?/containers/[^/]+/kill$ }}
    # a database's dump into a crane's standard input, and back out of its standard output
    http-request allow if {{ method POST }} {{ path_reg ^(/v[0-9.]+)?/containers/[^/]+/attach$ }}
    http-request allow if {{ method DELETE }} {{ path_reg ^(/v[0-9.]+)?/containers/[^/]+$ }}
    # restore's scratch volumes and the runs' stage volumes, by their name: no other volume
    # can be removed
    acl scratch_volume path_reg ^(/v[0-9.]+)?/volumes/{scratch}[0-9a-f]{{12}}$
    http-request allow if {{ method DELETE }} scratch_volume
    http-request deny deny_status 403
    default_backend dockerd

backend dockerd
    server dockerd "unix@${{DOCKER_SOCKET}}"
"""


class ProxyConfigError(SalvageError):
    exit_code = EXIT_CONFIG


def host_paths(config: Config) -> Tuple[List[str], List[str]]:
    """The host paths salvage bind-mounts into cranes: crane mounts (read-write), and
    secret files (read-only)."""
    mounts: Set[str] = set()
    secrets: Set[str] = set()
    for crane in config.cranes.values():
        mounts.update(source for source in crane.mounts if source.startswith("/"))
        secrets.update(crane.secrets.values())
    return sorted(mounts), sorted(secrets)


def _plain(path: str) -> str:
    """A path the rules can name as it is: JSON leaves it as it is, HAProxy's quotes too."""
    if not _PLAIN.fullmatch(path):
        raise ProxyConfigError(
            f"{path}: only letters, digits, spaces and /_.,+@=~- can be allowed through the proxy"
            " (it matches paths as the request spells them); rename it"
        )
    return path


def allowances(config: Config) -> Dict[str, object]:
    """What the rules allow beyond salvage's own volumes, for this configuration: the
    cranes' images (to create and pull), the exact bind strings of their host paths
    (read-write) and secrets (read-only) as docker-py spells them, their volume mounts."""
    images: Set[str] = set()
    binds: Set[str] = set()
    volume_mounts: Set[Tuple[str, str]] = set()
    for crane in config.cranes.values():
        if not _IMAGE.fullmatch(crane.image):
            raise ProxyConfigError(f'crane "{crane.name}": image "{crane.image}": not a plain name')
        images.add(crane.image)
        for source, target in crane.mounts.items():
            if source.startswith("/"):
                binds.add(f"{_plain(source)}:{_plain(target)}:rw")
            else:
                volume_mounts.add((source, _plain(target)))
        for name, path in crane.secrets.items():
            binds.add(f"{_plain(path)}:{SECRETS_DIR}/{_plain(name)}:ro")
        if sum(len(name) + len(value) + 4 for name, value in crane.env.items()) > ENV_ROOM:
            raise ProxyConfigError(
                f'crane "{crane.name}": env: more than {ENV_ROOM} bytes, and the proxy reads'
                f" at most {BODY_CAP} of a container's body: put scripts in the image"
            )
        for name, value in crane.env.items():
            if _JSON_ESCAPED.search(name + value):
                raise ProxyConfigError(
                    f'crane "{crane.name}": env {name}: a quote, a backslash, a line break or'
                    " a character beyond ASCII, which a container's body spells with an escape:"
                    " the proxy refuses those; put it in a file (secrets) or a script in the image"
                )
    if _JSON_ESCAPED.search(config.state_directory + config.machine):
        raise ProxyConfigError(
            "state_directory and machine: a quote, a backslash or a character beyond ASCII,"
            " which a crane's labels and environment would spell with an escape: the proxy"
            " refuses those"
        )
    pulls = [list(pull_reference(image)) for image in sorted(images)]
    return {
        "cap": BODY_CAP,
        "images": sorted(images),
        "pulls": pulls,
        "binds": sorted(binds),
        "volume_mounts": [list(pair) for pair in sorted(volume_mounts)],
    }


def render(config: Config, rules: Optional[str] = None) -> str:
    """The configuration, loading the rules from `rules` (default: the installed file)."""
    rules = rules or str(RULES)
    _plain(rules)
    allow = json.dumps(allowances(config), separators=(",", ":"))
    if "'" in allow or "\\" in allow:  # inside HAProxy's single quotes: no escapes there
        raise ProxyConfigError(f"cannot quote the proxy's allowances: {allow}")
    return TEMPLATE.format(
        json_package=JSON_PACKAGE,
        cap=BODY_CAP,
        bufsize=BUFSIZE,
        rules=rules,
        allow=allow,
        scratch=f"({re.escape(SCRATCH_PREFIX)}|{re.escape(STAGE_PREFIX)})",
    )
