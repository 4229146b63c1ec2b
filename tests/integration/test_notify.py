"""Notifications from a real run: each kind's requests as a real HTTP server on 127.0.0.1
receives them, routing by event, and a target that cannot be reached."""

from __future__ import annotations

import urllib.parse

import pytest
from support.harness import SCRIPT_CRANE
from support.receiver import Receiver, closed_port

SECRET = "hunter2-do-not-send-7f3a"  # in the crane's env
FILE_SECRET = "file-secret-9b2c"  # in one of its secrets


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


def _config(salvage, script: str, notify: str) -> None:
    """The test's tide on the script crane, whose env and secrets hold values it prints."""
    secret = salvage.tmp / "api-key"
    secret.write_text(FILE_SECRET)
    secret.chmod(0o600)
    salvage.write_config(
        f"""
        machine = "testhost"
        state_directory = "{salvage.tmp}"
        [tides.{salvage.tide}]
        crane = "script"
        grouping = "individual"
        [cranes.script]
        image = "{SCRIPT_CRANE}"
        pull = "never"
        mounts = {{ "@BACKUPS@" = "/out" }}
        secrets = {{ API_KEY = "{secret}" }}
        env = {{ API_TOKEN = "{SECRET}", CRANE_SCRIPT = '''echo $API_TOKEN $(cat $API_KEY_FILE);
          {script}''' }}
        {notify}
        """
    )


def _labelled(stack, name: str) -> str:
    volume = stack.volume(name)
    stack.container(name, [volume], labels={f"salvage.tide.{stack.tide}": f"g:{volume}"})
    return volume


def test_each_kind_gets_the_events_it_asked_for(stack, salvage, receiver):
    good, bad = _labelled(stack, "good"), _labelled(stack, "bad")
    tide = stack.tide
    _config(
        salvage,
        f'if [ "$SALVAGE_VOLUME_NAME" = "{bad}" ]; then echo disk full >&2; exit 3; fi',
        f"""
        [[notify]]
        kind = "discord"
        url = "{receiver.url("/api/webhooks/1/tok")}"
        [[notify]]
        kind = "ntfy"
        url = "{receiver.url("/backups")}"
        events = ["volume.success", "volume.failure"]
        [[notify]]
        kind = "webhook"
        url = "{receiver.url("/hook")}"
        events = ["tide.start", "tide.success", "tide.failure", "volume.success", "volume.failure"]
        template = '''{{"text": "$message", "event": "${{event}}", "volume": "$volume",
                     "failed": $volumes_failed}}'''
        [[notify]]
        kind = "healthchecks"
        url = "{receiver.url("/ping/5f1e")}"
        [[notify]]
        kind = "webhook"
        name = "good news only"
        url = "{receiver.url("/good-news")}"
        events = ["tide.success"]
        """,
    )
    done = salvage("run")

    assert done.returncode == 1, done.stderr  # the bad volume's, as without notifications
    assert "not sent" not in done.stderr
    failed_volume = (
        f'salvage on testhost: volume {bad} failed: crane "script" exited with 3 (tide {tide})'
    )
    failed_tide = (
        f"salvage on testhost: tide {tide} failed: 1 of 2 volumes failed:"
        f' {bad}: crane "script" exited with 3'
    )

    # Discord: the failures only (its default), as JSON with the message as content.
    discord = receiver.at("/api/webhooks/1/tok")
    assert [r.method for r in discord] == ["POST", "POST"]
    assert all(r.headers["Content-Type"] == "application/json" for r in discord)
    assert [r.json["content"].splitlines()[0] for r in discord] == [failed_volume, failed_tide]
    assert discord[0].json["allowed_mentions"] == {"parse": []}

    # ntfy: one message per volume, the first line as its title; failures urgent.
    ntfy = {r.headers["Title"]: r for r in receiver.at("/backups")}
    assert len(ntfy) == 2 and all(r.method == "POST" for r in ntfy.values())
    assert ntfy[failed_volume].headers["Priority"] == "high"
    assert ntfy[failed_volume].text.startswith(f"group {bad}, crane script, exit code 3")
    (ok_title,) = set(ntfy) - {failed_volume}
    assert ok_title.startswith(f"salvage on testhost: volume {good} backed up in ")
    assert ntfy[ok_title].headers["Priority"] == "default"

    # The generic webhook: its template filled in, for every event, in order.
    hook = receiver.at("/hook")
    assert [r.method for r in hook] == ["POST"] * 4
    bodies = [r.json for r in hook]
    events = [b["event"] for b in bodies]
    assert events[0] == "tide.start" and events[3] == "tide.failure"
    assert sorted(events[1:3]) == ["volume.failure", "volume.success"]
    assert bodies[0]["text"] == f"salvage on testhost: tide {tide} started: 2 volumes in 2 groups"
    by_volume = {b["volume"]: b for b in bodies[1:3]}
    assert by_volume[bad]["text"] == failed_volume
    assert by_volume[good]["event"] == "volume.success"
    assert bodies[3] == {"text": failed_tide, "event": "tide.failure", "volume": "", "failed": 1}

    # Healthchecks: /start when the tide starts, /fail when it ends failed.
    pings = [r for r in receiver.requests if r.path.startswith("/ping/")]
    assert [(r.method, r.path) for r in pings] == [
        ("POST", "/ping/5f1e/start"),
        ("POST", "/ping/5f1e/fail"),
    ]
    assert pings[1].text.splitlines()[0] == failed_tide
    assert f"failed: {bad}: crane" in pings[1].text and f"backed up: {good}" in pings[1].text

    # Routing: a target that asked only for successes heard nothing of this run.
    assert receiver.at("/good-news") == []
    # The crane printed its secrets; no notification carries them, nor its env.
    assert SECRET in done.stderr and FILE_SECRET in done.stderr
    for request in receiver.requests:
        for secret in (SECRET, FILE_SECRET, "CRANE_SCRIPT"):
            assert secret not in request.text and secret not in str(request.headers)


def test_unreachable_target_leaves_the_exit_code_alone(stack, salvage, receiver):
    _labelled(stack, "only")
    port = closed_port()
    _config(
        salvage,
        "cp -a /salvage/volume /out/$SALVAGE_VOLUME_NAME",
        f"""
        [[notify]]
        kind = "discord"
        url = "http://127.0.0.1:{port}/api/webhooks/1/secret-token"
        events = ["tide.start", "tide.success", "tide.failure"]
        retries = 1
        timeout = 2
        [[notify]]
        kind = "webhook"
        url = "{receiver.url("/failures")}"
        [[notify]]
        kind = "webhook"
        url = "{receiver.url("/successes")}"
        events = ["tide.success"]
        """,
    )
    done = salvage("run")

    assert done.returncode == 0, done.stderr
    warning = f"warning: notify discord at 127.0.0.1:{port}: tide.success not sent: "
    line = next(line for line in done.stderr.splitlines() if line.startswith(warning))
    assert line.endswith("Connection refused (2 tries)")
    assert "secret-token" not in done.stderr  # a webhook's URL is its password
    assert receiver.at("/failures") == []
    (success,) = receiver.at("/successes")
    data = success.json  # no template: the event's data as JSON
    assert data["event"] == "tide.success" and data["ok"] is True
    assert data["volumes_ok"] == 1 and data["volumes_failed"] == 0 and data["tide"] == stack.tide
    assert data["message"].startswith(
        f"salvage on testhost: tide {stack.tide}: 1 volume backed up in "
    )


def test_uptime_kuma_hears_down_with_the_reason_and_only_its_own_tide(stack, salvage, receiver):
    bad = _labelled(stack, "bad")
    _config(
        salvage,
        "echo disk full >&2; exit 3",
        f"""
        [tides.elsewhere]
        [[notify]]
        kind = "uptime-kuma"
        url = "{receiver.url("/api/push/mine?status=up&msg=OK&ping=")}"
        tides = ["{stack.tide}"]
        [[notify]]
        kind = "uptime-kuma"
        url = "{receiver.url("/api/push/theirs?status=up&msg=OK&ping=")}"
        tides = ["elsewhere"]
        """,
    )
    done = salvage("run", "--tide", stack.tide)
    assert done.returncode == 1, done.stderr
    assert "not sent" not in done.stderr
    (push,) = receiver.requests  # the other tide's monitor heard nothing
    assert push.method == "GET"
    path, query = push.path.split("?")
    assert path == "/api/push/mine"
    params = dict(pair.split("=", 1) for pair in query.split("&"))
    assert params["status"] == "down" and params["ping"] == ""
    assert urllib.parse.unquote(params["msg"]) == (
        f"salvage on testhost: tide {stack.tide} failed: 1 of 1 volume failed:"
        f' {bad}: crane "script" exited with 3'
    )


def test_apprise_delivers_through_its_json_scheme(stack, salvage, receiver):
    pytest.importorskip("apprise", reason="kind apprise needs the apprise module (test extra)")
    good, bad = _labelled(stack, "good"), _labelled(stack, "bad")
    port = receiver.server.server_address[1]
    _config(
        salvage,
        f'if [ "$SALVAGE_VOLUME_NAME" = "{bad}" ]; then exit 3; fi',
        f"""
        [[notify]]
        kind = "apprise"
        url = "json://127.0.0.1:{port}/apprise"
        events = ["volume.failure", "tide.failure"]
        """,
    )
    done = salvage("run")
    assert done.returncode == 1 and "not sent" not in done.stderr, done.stderr
    sent = [r.json for r in receiver.at("/apprise")]
    assert [r.method for r in receiver.at("/apprise")] == ["POST", "POST"]
    assert [s["title"] for s in sent] == [
        f'salvage on testhost: volume {bad} failed: crane "script" exited with 3'
        f" (tide {stack.tide})",
        f"salvage on testhost: tide {stack.tide} failed: 1 of 2 volumes failed:"
        f' {bad}: crane "script" exited with 3',
    ]
    assert all(s["type"] == "failure" for s in sent)
    assert sent[1]["message"].startswith(f"tide {stack.tide}: 1 volume backed up, 1 failed")
    assert SECRET not in str(sent) and FILE_SECRET not in str(sent)
    assert good in sent[1]["message"]
