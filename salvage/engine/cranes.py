"""Cranes: the backup containers salvage starts, one per volume.

The crane interface (docs/crane-interface.md): the volume read-only at /salvage/volume,
metadata in /salvage/meta/meta.json, the crane's extra mounts, SALVAGE_* variables and
the crane's own; exit code 0 means the backup succeeded.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import tarfile
import threading
import time
from typing import Callable, Dict, List, Mapping, Optional, Tuple

import requests
from docker.errors import DockerException, ImageNotFound, NotFound
from docker.types import Mount
from docker.utils import parse_repository_tag

from salvage.config import Crane
from salvage.config.schema import SECRETS_DIR
from salvage.core.labels import CRANE_ACTIONS
from salvage.engine.client import Engine, EngineError, describe
from salvage.errors import SalvageError

log = logging.getLogger("salvage")
VOLUME_MOUNT = "/salvage/volume"
META_DIR = "salvage/meta"


class CraneTimeout(SalvageError):
    pass


# salvage/crane-<name>[:tag] is a reference crane, built from its shipped build context.
REFERENCE = re.compile(r"salvage/crane-([a-z0-9-]+)(:[\w.-]+)?")


def build_context(image: str) -> Optional[str]:
    """The shipped build context of a reference crane image, if this is one."""
    match = REFERENCE.fullmatch(image)
    if not match:
        return None
    roots = (
        os.environ.get("SALVAGE_CRANES_DIR"),
        # Shipped inside the package (package data): a checkout, a wheel, pipx, the .deb.
        os.path.join(os.path.dirname(__file__), "..", "crane", "images"),
    )
    for root in filter(None, roots):
        context = os.path.join(root, match.group(1))
        if os.path.isfile(os.path.join(context, "Dockerfile")):
            return os.path.normpath(context)
    return None


def build_reference(engine: Engine, crane: Crane, context: str) -> None:
    """A fresh install needs no registry account and no manual step: build it here."""
    log.info('crane "%s": building %s from %s (first use)', crane.name, crane.image, context)
    args = {"BASE": crane.base} if crane.base else None
    try:
        for step in engine.unbounded().build(
            path=context, tag=crane.image, buildargs=args, rm=True, decode=True
        ):
            if "error" in step:
                raise EngineError(
                    f'crane "{crane.name}": building {crane.image}: ' + step["error"].strip()
                )
    except DockerException as error:
        raise EngineError(
            f'crane "{crane.name}": building {crane.image}: {describe(error)}'
        ) from None


def pull_reference(image: str) -> Tuple[str, str]:
    """The repository and tag (or digest) a pull of `image` asks the engine for (a socket
    proxy allows exactly these: salvage/actions/proxy_config.py)."""
    repository, tag = parse_repository_tag(image)
    return repository, tag or "latest"


def ensure_image(engine: Engine, crane: Crane) -> None:
    """Make the crane's image present, as its `pull` policy says; a missing reference
    crane is built from its shipped build context instead."""
    api = engine.api
    if crane.pull != "always":
        try:
            api.inspect_image(crane.image)
            return
        except ImageNotFound:
            context = build_context(crane.image)
            if context:
                build_reference(engine, crane, context)
                return
            if crane.pull == "never":
                raise EngineError(
                    f'crane "{crane.name}": image "{crane.image}" is not on this host'
                    " (pull = never)"
                ) from None
    repository, tag = pull_reference(crane.image)
    try:
        api.pull(repository, tag=tag)
    except DockerException as error:
        raise EngineError(
            f'crane "{crane.name}": cannot pull image "{crane.image}": {describe(error)}'
        ) from None


def tide_actions(engine: Engine, crane: Crane) -> List[str]:
    """The tide-wide actions (init, retention) the crane's image declares in its
    salvage.crane.actions label: salvage calls only those, since a crane that ignores
    SALVAGE_ACTION would take any other call for a backup."""
    try:
        found = engine.api.inspect_image(crane.image)
    except DockerException as error:
        raise EngineError(
            f'crane "{crane.name}": image "{crane.image}": {describe(error)}'
        ) from None
    labels = (found.get("Config") or {}).get("Labels") or {}
    return labels.get(CRANE_ACTIONS, "").split()


def check_secrets(crane: Crane) -> None:
    """Secret files must exist: a missing bind source would make Docker create a directory."""
    for name, path in crane.secrets.items():
        if not os.path.isfile(path):
            raise EngineError(f'crane "{crane.name}": secret {name}: no file {path}')


def secret_env(crane: Crane) -> Dict[str, str]:
    """NAME_FILE=/run/secrets/NAME for each secret, the convention most images follow."""
    return {f"{name}_FILE": f"{SECRETS_DIR}/{name}" for name in crane.secrets}


def _meta_archive(meta: Mapping) -> bytes:
    """A tar stream holding /salvage/meta/meta.json, copied into the crane before it starts
    (a bind mount would name a path on the engine's host, which need not be ours)."""
    body = json.dumps(meta, indent=2, sort_keys=True).encode() + b"\n"
    buffer = io.BytesIO()
    now = time.time()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for directory in ("salvage", META_DIR):
            info = tarfile.TarInfo(directory)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, now
            archive.addfile(info)
        info = tarfile.TarInfo(f"{META_DIR}/meta.json")
        info.size, info.mode, info.mtime = len(body), 0o644, now
        archive.addfile(info, io.BytesIO(body))
    return buffer.getvalue()


# Written into a crane's /salvage/meta just before salvage ends a stream's input: only then
# is the end of the input the end of the stream (salvage killed mid-stream ends it too).
STREAM_COMPLETE = "stream-complete"


def mark_stream_complete(engine: Engine, crane: str) -> None:
    """Tell the crane `crane` (id or name) that its input is whole, before it ends."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo(STREAM_COMPLETE)
        info.size, info.mode, info.mtime = 0, 0o644, time.time()
        archive.addfile(info, io.BytesIO(b""))
    engine.api.put_archive(crane, f"/{META_DIR}", buffer.getvalue())


def container_name(volume: str, run_id: str) -> str:
    return "salvage-crane-" + re.sub(r"[^a-zA-Z0-9_.-]", "_", volume) + "-" + run_id[:8]


def run_crane(
    engine: Engine,
    crane: Crane,
    *,
    name: str,
    volume: Optional[str],
    bind: Optional[str] = None,
    env: Mapping[str, str],
    labels: Mapping[str, str],
    meta: Mapping,
    run_id: str,
    timeout: float,
    on_line: Callable[[str], None],
    writable: bool = False,
    capture: bool = False,
    cancelled: Optional[threading.Event] = None,
    read_back: Optional[Tuple[str, int, Callable[[Optional[bytes]], None]]] = None,
    stdin: Optional[Callable[[object], None]] = None,
    stdout: Optional[Callable[[object], None]] = None,
) -> Tuple[int, str]:
    """Run a crane to its end: (exit code, its standard output when `capture`).

    `volume` is mounted at /salvage/volume, read-only unless `writable` (a restore), or
    else the host directory `bind`, always read-only; with
    `capture` standard output is data for salvage (list, meta) and only standard error goes
    to `on_line`. The crane container is always removed afterwards; one that outlives
    `timeout` is killed and CraneTimeout raised. `read_back` (path, limit, callback): once
    the crane has exited, the callback gets at most limit + 1 bytes of the file at that path
    in the container, or None when there is none (a crane's report of what it stored).
    `stdin` / `stdout` (a stream, docs/crane-interface.md): called in a thread once the
    crane has started, with a socket attached to its standard input (which the callback
    must close) / to its multiplexed output; with `stdout` the crane keeps no log (its
    output is data, never on the engine's disk) and the callback reads its stderr too.
    """
    api = engine.api
    mounts: List[Mount] = []
    if volume:
        mounts.append(
            Mount(VOLUME_MOUNT, volume, type="volume", read_only=not writable, no_copy=True)
        )
    elif bind:  # a mount, not a bind string: a missing host path fails, never is created
        mounts.append(Mount(VOLUME_MOUNT, bind, type="bind", read_only=True))
    binds: Dict[str, Dict[str, str]] = {}
    for source, target in crane.mounts.items():
        if source.startswith("/"):
            # A host path: as with `docker run -v`, the engine creates it when missing.
            binds[source] = {"bind": target, "mode": "rw"}
        else:
            mounts.append(Mount(target, source, type="volume"))
    for secret, path in crane.secrets.items():
        # Read-only and never in the environment: `docker inspect` shows env, not files.
        binds[path] = {"bind": f"{SECRETS_DIR}/{secret}", "mode": "ro"}
    log_config = {"type": "none", "config": {}} if stdout else None
    host_config = api.create_host_config(mounts=mounts, binds=binds or None, log_config=log_config)
    created = api.create_container(
        crane.image,
        environment=dict(env),
        labels=dict(labels),
        host_config=host_config,
        name=container_name(name, run_id),
        stdin_open=stdin is not None,  # not detached: docker-py sets StdinOnce with it
    )
    crane_id = created["Id"]
    waiter = engine.unbounded()
    streamer = engine.unbounded() if (stdin or stdout) else None
    reader = None
    try:
        api.put_archive(crane_id, "/", _meta_archive(meta))
        attached = None
        if streamer is not None:  # stdin or stdout; before the start: not a byte is missed
            params = {"stdin": 1, "stream": 1} if stdin else {"stdout": 1, "stderr": 1, "stream": 1}
            attached = streamer.attach_socket(crane_id, params=params)
        api.start(crane_id)
        if cancelled is not None and cancelled.is_set():
            api.kill(crane_id)  # an abort that came while the crane was being created
        if attached is not None:
            feeder = threading.Thread(
                target=stdin or stdout, args=(attached,), name=f"crane-{name}-stream", daemon=True
            )
            feeder.start()
        if stdout:  # no log to follow: the stream's thread reads it all
            reader = feeder
        else:
            reader = threading.Thread(
                target=_follow,
                args=(waiter, crane_id, on_line, not capture),
                name=f"crane-{name}",
            )
            reader.daemon = True
            reader.start()
        try:
            # docker-py's wait() sets its own request timeout, overriding the client's.
            status = waiter.wait(crane_id, timeout=timeout)
        except Exception as error:  # a read timeout, however the transport words it
            if _running(engine, crane_id):
                api.kill(crane_id)
                raise CraneTimeout(f"still running after {timeout:.0f} s; killed") from None
            raise EngineError(describe(error)) from None
        output = api.logs(crane_id, stdout=True, stderr=False) if capture else b""
        if read_back is not None:
            path, limit, callback = read_back
            try:
                found = read_file(engine, crane_id, path, limit)
            except (DockerException, requests.exceptions.RequestException) as error:
                log.warning("%s: %s not read back: %s", name, path, describe(error))
                found = None  # the backup itself is done: only its report is missing
            callback(found)
        return int(status.get("StatusCode", -1)), output.decode("utf-8", "replace")
    finally:
        if reader is not None:
            reader.join(timeout=10)
        try:  # again once an engine that went away is back
            engine.retry(lambda: api.remove_container(crane_id, force=True))
        except (DockerException, requests.exceptions.RequestException):
            pass  # recovery removes leftovers by label
        waiter.close()
        if streamer is not None:
            streamer.close()


def read_file(engine: Engine, container_id: str, path: str, limit: int) -> Optional[bytes]:
    """At most limit + 1 bytes of a regular file in a (stopped) container; None when the
    path is missing or not a regular file. The rest of the stream is never read."""
    try:
        stream, _ = engine.api.get_archive(container_id, path)
    except NotFound:
        return None
    chunks = iter(stream)

    class Reader(io.RawIOBase):  # the tar stream, as tarfile reads it, chunk by chunk
        pending = b""

        def readable(self) -> bool:
            return True

        def readinto(self, buffer) -> int:
            while not self.pending:
                self.pending = next(chunks, b"")
                if not self.pending:
                    return 0
            size = min(len(buffer), len(self.pending))
            buffer[:size], self.pending = self.pending[:size], self.pending[size:]
            return size

    try:
        with tarfile.open(fileobj=io.BufferedReader(Reader()), mode="r|") as archive:
            member = archive.next()
            if member is None or not member.isfile():
                return None
            extracted = archive.extractfile(member)
            return extracted.read(limit + 1) if extracted else None
    except tarfile.TarError:
        return None
    finally:
        close = getattr(stream, "close", None)
        if close:
            close()


def _running(engine: Engine, crane_id: str) -> bool:
    try:
        return engine.api.inspect_container(crane_id)["State"]["Running"]
    except DockerException:
        return False


def _follow(api, crane_id: str, on_line: Callable[[str], None], stdout: bool = True) -> None:
    pending = b""
    try:
        for chunk in api.logs(crane_id, stdout=stdout, stderr=True, stream=True, follow=True):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                on_line(line.decode("utf-8", "replace").rstrip("\r"))
    except DockerException:
        pass
    if pending:
        on_line(pending.decode("utf-8", "replace"))
