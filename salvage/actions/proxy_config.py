"""`salvage proxy-config`: the HAProxy configuration of a Docker socket proxy that lets
through only the calls salvage makes (docs/docker-api.md), for this salvage.toml.

Creating a container is the call that could give away the host, so its JSON body is read
(HAProxy's `option http-buffer-request`) and refused unless it is plain: only keys salvage
sends, network "default", "none" or "bridge", mounts of volumes only, and bind mounts of
volumes or of exactly the host paths the configuration names (crane mounts, secrets).
The regular expressions work on the raw JSON. They deny by default where they can (a key
not in the list, spelled with an escape or in any other way, is refused; a bind is allowed
only when each element's source is a volume name or a configured path), and where they
cannot spell out everything allowed they refuse escapes and bytes beyond ASCII, so that the
key they look for cannot hide. A key is a string after `{`, `,` or a space: never one
inside a string (where a quote follows a backslash).
"""

from __future__ import annotations

import re
import textwrap
from typing import List, Set, Tuple

from salvage.config import Config
from salvage.core.labels import VOLUME_NAME
from salvage.crane.staging import STAGE_PREFIX
from salvage.engine.volumes import SCRATCH_PREFIX
from salvage.errors import EXIT_CONFIG, SalvageError

# Keys of a container create body (any level; Docker matches keys without regard to case):
# what docker-py sends for salvage's cranes and helper containers, and salvage's labels.
CREATE_KEYS = (
    "Tty|OpenStdin|StdinOnce|AttachStdin|AttachStdout|AttachStderr|Env|Cmd|Entrypoint|Image"
    "|WorkingDir|User|NetworkDisabled|Labels|StopSignal|StopTimeout|HostConfig|NetworkMode"
    "|AutoRemove|ReadonlyRootfs|Init|Binds|Mounts|Target|Source|Type|ReadOnly|VolumeOptions|NoCopy"
    "|LogConfig|Config"
    r"|salvage\.[a-z0-9._-]+"
)
_PLAIN = re.compile(r"[A-Za-z0-9/_.,+@=~ -]+")  # characters JSON leaves as they are

TEMPLATE = """\
# A Docker socket proxy that lets through only the API calls salvage makes
# (docs/docker-api.md), as `salvage proxy-config` prints it for a salvage.toml.
# Run it as a user who can open the Docker socket:
#   SALVAGE_PROXY_SOCKET=/run/salvage-proxy/docker.sock DOCKER_SOCKET=/var/run/docker.sock \\
#     haproxy -f haproxy.cfg
# and give salvage DOCKER_HOST=unix:///run/salvage-proxy/docker.sock.
# Print it again whenever the cranes' host paths or secrets change.
global
    log stderr format short local0 warning

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
    acl create path_reg ^(/v[0-9.]+)?/containers/create$
    acl volume_create path_reg ^(/v[0-9.]+)?/volumes/create$
    acl exec_create path_reg ^(/v[0-9.]+)?/containers/[^/]+/exec$
    acl with_body path_reg ^(/v[0-9.]+)?/(containers/create|volumes/create|containers/[^/]+/exec)$
    acl start path_reg ^(/v[0-9.]+)?/containers/[^/]+/start$
    http-request deny deny_status 403 if versioned !recent

    # Bodies: whole (never chunked, all of it buffered); none for start.
    http-request set-var(txn.body_len) req.body_len
    http-request deny deny_status 403 if with_body {{ req.hdr(transfer-encoding) -m found }}
    http-request deny deny_status 403 if with_body {{ req.body_size,sub(txn.body_len) gt 0 }}
    http-request deny deny_status 403 if start {{ req.hdr(transfer-encoding) -m found }}
    http-request deny deny_status 403 if start {{ req.body_size gt 0 }}
{body_rules}

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
    # pre/post commands
    http-request allow if {{ method POST }} {{ path_reg ^(/v[0-9.]+)?/containers/[^/]+/exec$ }}
    http-request allow if {{ method POST }} {{ path_reg ^(/v[0-9.]+)?/exec/[^/]+/start$ }}
    http-request allow if {{ method GET }} {{ path_reg ^(/v[0-9.]+)?/exec/[^/]+/json$ }}
    # cranes, and restore's helper containers and volumes
    http-request allow if {{ method GET }} {{ path_reg ^(/v[0-9.]+)?/images/.+/json$ }}
    http-request allow if {{ method POST }} {{ path_reg ^(/v[0-9.]+)?/images/create$ }}
    http-request allow if {{ method POST }} {{ path_reg ^(/v[0-9.]+)?/containers/create$ }}
    http-request allow if {{ method POST }} {{ path_reg ^(/v[0-9.]+)?/volumes/create$ }}
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


# (what the rule is about, the ACL of the requests it applies to, the regular expressions
# a body must not match); HAProxy takes them as written, inside single quotes.
BODY_RULES = (
    (
        "Bodies: plain ASCII, so that every key is spelled plainly.",
        "with_body",
        [r"[^\x09\x0a\x0d\x20-\x7e]"],
    ),
    (
        "Containers: only the keys salvage sends, as it spells them; a network of their own"
        " or none; mounts of volumes only (no logging driver but none, for a dump's replay);"
        " binds of volumes or of the configured host paths.",
        "create",
        [
            r'(?i)(?<=[{,\s])"(?!({keys})")[^"]*"\s*:',
            r'(?i)"networkmode"\s*:(?!\s*"(default|none|bridge)")',
            r'(?i)"type"\s*:(?!\s*"(volume|none)")',
            r'(?i)"binds"\s*:(?!\s*(null|\[\s*({bind}(\s*,\s*{bind})*)?\s*\]))',
        ],
    ),
    (
        "Volumes: no escapes; the local driver only with types that mount no host path.",
        "volume_create",
        [
            r"\\",
            r'(?i)"type"\s*:(?!\s*"(nfs|nfs4|tmpfs)")',
            r'(?i)"device"\s*:(?!\s*"(tmpfs|[^"/]*:[^"]*)")',
            r'(?i)"o"\s*:\s*"[^"]*(bind|dir=)',
        ],
    ),
    (
        "Commands in containers: never privileged (and no escape spells that key).",
        "exec_create",
        [r"\\u", r'(?i)"privileged"\s*:(?!\s*false)'],
    ),
)


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


def _literal(path: str) -> str:
    """A path as a case-sensitive regular expression matching exactly it."""
    if not _PLAIN.fullmatch(path):
        raise ProxyConfigError(
            f"{path}: only letters, digits, spaces and /_.,+@=~- can be allowed through the proxy"
            " (it matches paths as the request spells them); rename it"
        )
    escaped = path.replace(".", "\\.").replace("+", "\\+").replace(" ", "\\x20")
    return "(?-i:" + escaped + ")"


def render(config: Config) -> str:
    mounts, secrets = host_paths(config)
    sources = "|".join([VOLUME_NAME] + [_literal(path) for path in mounts])
    bind = f'"({sources}):[^"]*"'
    if secrets:  # read-only, as salvage mounts them
        bind = f'({bind}|"({"|".join(_literal(path) for path in secrets)}):[^":]*:ro")'
    lines = []
    for why, acl, regexes in BODY_RULES:
        lines += [""] + [f"    # {line}" for line in textwrap.wrap(why, 88)]
        for regex in regexes:
            regex = regex.replace("{keys}", CREATE_KEYS).replace("{bind}", bind)
            lines.append(
                f"    http-request deny deny_status 403 if {acl} {{ req.body -m reg '{regex}' }}"
            )
    return TEMPLATE.format(
        body_rules="\n".join(lines),
        scratch=f"({re.escape(SCRATCH_PREFIX)}|{re.escape(STAGE_PREFIX)})",
    )
