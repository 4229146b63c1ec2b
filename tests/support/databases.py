"""Database images for the dump tests: PostgreSQL 15 and MariaDB 10.11 from the host
release's own packages (Debian 12), on the harness's debootstrapped base.

debootstrap with the server package runs once per machine (a cached tarball, as
support.debian does); each engine imports it once and adds a small entrypoint that
initialises the data directory and sets the superuser's password from the environment,
with the official images' variable names (POSTGRES_USER, POSTGRES_PASSWORD[_FILE];
MARIADB_ROOT_PASSWORD[_FILE], MYSQL_ROOT_PASSWORD[_FILE]).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from support import debian
from support.cache import locked

POSTGRES = "salvage-test/postgres:15"
MARIADB = "salvage-test/mariadb:10.11"

_SECRET = """secret() {  # $1, or the file $1_FILE names
    eval "file=\\${${1}_FILE:-}"; eval "value=\\${${1}:-}"
    if [ -n "$file" ]; then cat "$file"; else printf %s "$value"; fi
}
"""

POSTGRES_ENTRYPOINT = (
    "#!/bin/sh\nset -eu\n"
    + _SECRET
    + """PGDATA=/var/lib/postgresql/data
bin=/usr/lib/postgresql/15/bin
user=$(secret POSTGRES_USER); user=${user:-postgres}
mkdir -p "$PGDATA" /run/postgresql
chown postgres:postgres "$PGDATA" /run/postgresql
chmod 0700 "$PGDATA"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    umask 077
    secret POSTGRES_PASSWORD > /tmp/pwfile
    chown postgres /tmp/pwfile
    # Passwords on the socket too: a dump must bring its own credentials.
    runuser -u postgres -- "$bin/initdb" -D "$PGDATA" -U "$user" --pwfile=/tmp/pwfile \\
        --auth-local=scram-sha-256 --auth-host=scram-sha-256 >/dev/null
    rm -f /tmp/pwfile
fi
exec runuser -u postgres -- "$bin/postgres" -D "$PGDATA" -c listen_addresses= \\
    -c unix_socket_directories=/run/postgresql
"""
)

MARIADB_ENTRYPOINT = (
    "#!/bin/sh\nset -eu\n"
    + _SECRET
    + """password=$(secret MARIADB_ROOT_PASSWORD)
[ -n "$password" ] || password=$(secret MYSQL_ROOT_PASSWORD)
mkdir -p /run/mysqld
chown mysql:mysql /run/mysqld /var/lib/mysql
if [ ! -d /var/lib/mysql/mysql ]; then
    mariadb-install-db --user=mysql --datadir=/var/lib/mysql --skip-test-db \\
        --auth-root-authentication-method=normal >/dev/null
    # The password through standard input, never a command line.
    printf "FLUSH PRIVILEGES;\\nALTER USER 'root'@'localhost' IDENTIFIED BY '%s';\\n" \\
        "$password" | mariadbd --user=mysql --datadir=/var/lib/mysql --bootstrap >/dev/null
fi
exec mariadbd --user=mysql --datadir=/var/lib/mysql --skip-networking \\
    --socket=/run/mysqld/mysqld.sock
"""
)

IMAGES = {
    POSTGRES: (("postgresql-15",), POSTGRES_ENTRYPOINT, "rm -rf /var/lib/postgresql/15"),
    MARIADB: (("mariadb-server", "mariadb-client"), MARIADB_ENTRYPOINT, "rm -rf /var/lib/mysql/*"),
}


def image(docker_host: str, name: str) -> str:
    """The database image `name` on this engine, built from the cached root once."""
    env = dict(os.environ, DOCKER_HOST=docker_host)
    with locked(f"{docker_host} {name}"):
        found = subprocess.run(["docker", "image", "inspect", name], env=env, capture_output=True)
        if found.returncode == 0:
            return name
        packages, entrypoint, tidy = IMAGES[name]
        base = name.replace("salvage-test/", "salvage-test/root-")
        debian.imported(docker_host, base, debian.rootfs(packages))
        context = Path(tempfile.mkdtemp(prefix="salvage-db-image-"))
        try:
            (context / "entrypoint").write_text(entrypoint)
            (context / "Dockerfile").write_text(
                f"FROM {base}\nCOPY entrypoint /usr/local/bin/entrypoint\n"
                f"RUN chmod 0755 /usr/local/bin/entrypoint && {tidy}\n"
                'ENTRYPOINT ["/usr/local/bin/entrypoint"]\n'
            )
            subprocess.run(
                ["docker", "build", "-q", "-t", name, str(context)],
                env=env,
                check=True,
                stdout=subprocess.DEVNULL,
            )
        finally:
            shutil.rmtree(context)
    return name
