"""Notifications under faults, with real HTTP receivers on 127.0.0.1: a name no header can
carry, a URL with a password in it, a server that answers one byte at a time, and a signal
while salvage waits for it."""

from __future__ import annotations

import base64
import signal
import subprocess
import sys
import time
from email.header import decode_header, make_header

import pytest
from support.notify_socket import NotifySocket
from support.receiver import Receiver, closed_port
from support.scene import CALM, wait_for

PASSWORD = "pa55-w0rd-7c1e"


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def slow():
    server = Receiver(drip=1.0)  # one byte a second, never done
    yield server
    server.close()


def _targets(*targets: str) -> str:
    return "\n".join(f"[[notify]]\n{target.strip()}\n" for target in targets)


def _stack(scene, notify: str) -> str:
    vol = scene.volume("data")
    scene.container("app", [vol], scene.label(vol))
    scene.config = scene.write_config(top=notify)
    scene.go()  # the crane copies the volume and ends
    scene.snapshot()
    return vol


def test_a_name_no_header_can_carry_reaches_every_target(scene, table, receiver):
    tides = ["nightly\nX-Injected: 1", "büro 服务器"]  # a header's end; not Latin-1
    events = 'events = ["tide.start", "tide.success"]'
    notify = _targets(
        f'kind = "ntfy"\nurl = "{receiver.url("/ntfy")}"\n{events}',
        f'kind = "webhook"\nurl = "{receiver.url("/hook")}"\n{events}',
        f'kind = "discord"\nurl = "{receiver.url("/discord")}"\n{events}',
        f'kind = "healthchecks"\nurl = "{receiver.url("/hc")}"',
    )
    scene.config = scene.write_config(top=notify)
    text = scene.config.read_text()
    for tide in tides:
        key = tide.replace("\n", "\\n")  # a TOML escape
        text += f'[tides."{key}"]\ncrane = "script"\n'
    scene.config.write_text(text)
    done = scene.salvage("run", "--tide", tides[0], "--tide", tides[1])
    assert "Traceback" not in done.stderr, done.stderr
    got = {path: len(receiver.at(path)) for path in ("/ntfy", "/hook", "/discord")}
    got["/hc"] = len([r for r in receiver.requests if r.path.startswith("/hc")])
    titles = [r.headers["Title"] for r in receiver.at("/ntfy")]
    decoded = " | ".join(str(make_header(decode_header(title))) for title in titles)
    fine = len(titles) == 4 and all("\n" not in t and t.isascii() for t in titles)
    fine = fine and "tide nightly X-Injected: 1" in decoded and "tide büro 服务器" in decoded
    table(
        "tide names with a newline and with non-ASCII, 4 notify targets (ntfy first)",
        "exit 0; ntfy 4, webhook 4, discord 4, healthchecks 4; ntfy titles one line, decoded",
        f"exit {done.returncode}; ntfy {got['/ntfy']}, webhook {got['/hook']},"
        f" discord {got['/discord']}, healthchecks {got['/hc']};"
        f" ntfy titles {'one line, decoded' if fine else repr(titles)}",
    )


def test_a_password_in_a_notify_url_goes_as_basic_auth_only(scene, table, receiver):
    port = receiver.server.server_address[1]
    dead = closed_port()
    notify = _targets(
        f'kind = "webhook"\nurl = "http://salvage:{PASSWORD}@127.0.0.1:{port}/hook"\n'
        'events = ["tide.success"]',
        f'kind = "webhook"\nurl = "http://salvage:{PASSWORD}@127.0.0.1:{dead}/x"\n'
        'events = ["tide.success"]\nretries = 0',
    )
    _stack(scene, notify)
    done = scene.salvage("run")
    check = scene.salvage("check")
    (hook,) = receiver.at("/hook") or [None]
    expected = "Basic " + base64.b64encode(f"salvage:{PASSWORD}".encode()).decode()
    auth = "basic auth" if hook and hook.headers.get("Authorization") == expected else "no auth"
    said = [
        n
        for n, o in (("run", done.stderr + done.stdout), ("check", check.stderr + check.stdout))
        if PASSWORD in o
    ]
    warned = f"notify webhook at 127.0.0.1:{dead}: tide.success not sent" in done.stderr
    table(
        "a notify URL with user:password@ (one reachable, one not)",
        f"exit 0; sent with basic auth; the other warned of; password in no output; {CALM}",
        f"exit {done.returncode}; sent with {auth}; the other {'' if warned else 'not '}warned"
        f" of; password in {', '.join(said) or 'no'} output; {scene.observe()}",
    )


def _slow(slow, timeout: float, retries: int) -> str:
    return _targets(
        f'kind = "webhook"\nurl = "{slow.url("/slow")}"\nevents = ["tide.success"]'
        f"\ntimeout = {timeout}\nretries = {retries}"
    )


def _run(scene, **env) -> tuple:
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "salvage", "-c", str(scene.config), "run"],
        env=scene.env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return proc, started


def _ended_within(proc, seconds: float) -> bool:
    try:
        proc.wait(timeout=seconds)
        return True
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return False


def test_a_slow_webhook_has_a_deadline(scene, table, slow):
    timeout, retries = 2, 1
    _stack(scene, _slow(slow, timeout, retries))
    proc, _ = _run(scene)
    wait_for(lambda: slow.at("/slow"), "the webhook's first request", timeout=120)
    # Each try within its timeout, with a 1 s pause between: then the run ends.
    bound = (retries + 1) * timeout + sum(range(1, retries + 1)) + 5
    ended = _ended_within(proc, bound)
    _, stderr = proc.communicate()
    gave_up = "tide.success not sent: no answer within 2 s (2 tries)" in stderr
    table(
        "a webhook that answers one byte a second (timeout 2 s, 1 retry)",
        f"run ends within {bound} s of the first try; the failure said; {CALM}",
        f"run {'ends' if ended else 'still going'} within {bound} s of the first try"
        f"; the failure {'said' if gave_up else 'not said'}; {scene.observe()}",
    )


def test_sigterm_while_a_slow_webhook_answers(scene, table, slow):
    timeout = 60  # far longer than this test may take: only the signal can end the wait
    _stack(scene, _slow(slow, timeout, 2))
    sock = NotifySocket()
    try:
        proc, _ = _run(scene, NOTIFY_SOCKET=sock.address)
        wait_for(lambda: slow.at("/slow"), "the webhook's request", timeout=120)
        wait_for(
            lambda: any("done, containers were down" in s for s in sock.values("STATUS")),
            "the group's end in STATUS=",
        )
        signalled = time.time()
        proc.send_signal(signal.SIGTERM)
        ended = _ended_within(proc, timeout / 4)
        after = [f for w, f in sock.messages() if w >= signalled]
    finally:
        sock.close()
    extended = sum("EXTEND_TIMEOUT_USEC" in f for f in after)
    restoring = any("restoring containers" in f.get("STATUS", "") for f in after)
    table(
        "SIGTERM while a webhook answers one byte a second, containers back (timeout 60 s)",
        f"exit 1 within 15 s; stop extended 0 times; status never 'restoring'; {CALM}",
        f"exit {proc.returncode if ended else 'none'} within {timeout / 4:g} s;"
        f" stop extended {extended} times;"
        f" status {'said' if restoring else 'never'} 'restoring'; {scene.observe()}",
    )
