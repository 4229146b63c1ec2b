"""Notifications without a run: what each event says, how each kind shapes its request,
webhook templates, the [[notify]] checks, and delivery against a real HTTP server on
127.0.0.1 (retries, refusals, timeouts)."""

import json
import socket
from email.header import decode_header, make_header
from types import SimpleNamespace

import pytest
from support.receiver import Receiver

from salvage.config.schema import Crane, Notify, Tide
from salvage.config.validate import validate
from salvage.core.model import Problem
from salvage.core.results import TideResult, VolumeResult
from salvage.report.notify import discord, healthchecks, message, ntfy, send, webhook
from salvage.report.notify.delivery import Request, Undelivered, deliver


def _run():
    result = TideResult("daily", run_id="abc123", started=1_790_000_000.0)
    crane = Crane("tar", "salvage/crane-tar", env={"TOKEN": "s3cret-value"})
    config = SimpleNamespace(machine="box")
    return SimpleNamespace(
        config=config, tide=Tide("daily"), crane=crane, run_id="abc123", result=result
    )


def _volume(name, ok=True, why=""):
    return VolumeResult(
        name,
        ok,
        why,
        exit_code=0 if ok else 3,
        seconds=2.5,
        group="shop",
        crane="tar",
        started=1_790_000_001.0,
        downtime=4.25,
    )


def _done(*volumes, **fields):
    run = _run()
    run.result.volumes, run.result.ended = list(volumes), run.result.started + 6
    for key, value in fields.items():
        setattr(run.result, key, value)
    return run


# --- what each event says ---------------------------------------------------------------


def test_the_first_line_says_what_failed_and_why():
    bad = _volume("shop_db", False, 'crane "tar" exited with 3')
    run = _done(_volume("shop_uploads"), bad)
    assert message.volume_done(run, bad).title == (
        'salvage on box: volume shop_db failed: crane "tar" exited with 3 (tide daily)'
    )
    event = message.tide_done(run, run.result)
    assert event.name == "tide.failure" and event.failure
    assert event.title == (
        "salvage on box: tide daily failed: 1 of 2 volumes failed:"
        ' shop_db: crane "tar" exited with 3'
    )
    assert event.details.splitlines() == [
        run.result.summary(),
        'failed: shop_db: crane "tar" exited with 3',
        "backed up: shop_uploads",
        "run abc123 (manual)",
    ]


def test_a_tide_failure_puts_the_worst_first():
    run = _done(
        *[_volume(f"v{i}", False, "disk full") for i in range(5)],
        interrupted="SIGTERM",
        errors=[Problem('container "db"', "could not be restored: no such container")],
        problems=[Problem('container "x"', 'label salvage.action: "explode" is not one of ...')],
    )
    assert message.tide_done(run, run.result).title == (
        "salvage on box: tide daily failed: interrupted (SIGTERM);"
        ' container "db": could not be restored: no such container;'
        " 5 of 5 volumes failed: v0: disk full; v1: disk full; v2: disk full; and 2 more;"
        ' 1 label problem: container "x": label salvage.action: "explode" is not one of ...'
    )


def test_successes_and_starts():
    run = _done(_volume("a"), _volume("b"))
    assert message.tide_done(run, run.result).title == (
        "salvage on box: tide daily: 2 volumes backed up in 6.0 s"
    )
    assert message.volume_done(run, _volume("a")).text == (
        "salvage on box: volume a backed up in 2.5 s (tide daily)\n"
        "group shop, crane tar, exit code 0, containers down 4.2 s"
    )
    groups = [SimpleNamespace(volumes=("a", "b")), SimpleNamespace(volumes=("c",))]
    plan = SimpleNamespace(groups=groups, problems=())
    assert message.tide_started(run, plan).title == (
        "salvage on box: tide daily started: 3 volumes in 2 groups"
    )
    empty = _done()
    assert message.tide_done(empty, empty.result).title == (
        "salvage on box: tide daily: no volume is labelled salvage.tide.daily"
    )


def test_the_data_has_every_field_and_no_crane_env():
    run = _done(_volume("a"), _volume("b", False, "boom"))
    for event in (message.tide_done(run, run.result), message.volume_done(run, _volume("a"))):
        assert tuple(event.data) == message.FIELDS
        assert "s3cret-value" not in json.dumps(event.data)
    data = message.tide_done(run, run.result).data
    assert data["failed"] == [{"volume": "b", "error": "boom"}]
    assert (data["volumes"], data["volumes_ok"], data["volumes_failed"]) == (2, 1, 1)


# --- each kind's request ------------------------------------------------------------------


def _target(kind, url="http://127.0.0.1:9/x", **kw):
    return Notify(kind, url, **kw)


def test_discord_sends_json_content_cut_at_its_limit():
    run = _done(*[_volume(f"volume-{i:03}-" + "x" * 40, False, "e" * 50) for i in range(60)])
    request = discord.request(_target("discord"), message.tide_done(run, run.result))
    body = json.loads(request.body)
    assert len(body["content"]) == 2000 and body["content"].endswith("…")
    assert body["allowed_mentions"] == {"parse": []}
    assert request.headers == {"Content-Type": "application/json"}


def test_ntfy_titles_with_the_first_line_and_encodes_what_latin1_cannot_carry():
    run = _run()
    run.config.machine = "büro-服务器"
    event = message.volume_done(run, _volume("db", False, "disk full"))
    request = ntfy.request(_target("ntfy"), event)
    assert request.headers["Title"].lower().startswith("=?utf-8?b?")
    assert "\n" not in request.headers["Title"]  # encoded words, never folded
    assert str(make_header(decode_header(request.headers["Title"]))) == event.title
    assert request.headers["Priority"] == "high" and request.body == event.details.encode()


def test_healthchecks_pings_start_success_and_fail_and_nothing_per_volume():
    run = _done(_volume("a"))
    target = _target("healthchecks", "https://hc.example/ping/uuid/")
    plan = SimpleNamespace(groups=[], problems=())
    start = healthchecks.request(target, message.tide_started(run, plan))
    done = healthchecks.request(target, message.tide_done(run, run.result))
    assert (start.url, done.url) == (
        "https://hc.example/ping/uuid/start",
        "https://hc.example/ping/uuid",
    )
    run.result.volumes[0].ok = False
    failed = healthchecks.request(target, message.tide_done(run, run.result))
    assert failed.url == "https://hc.example/ping/uuid/fail"
    assert healthchecks.request(target, message.volume_done(run, _volume("a"))) is None


# --- webhook templates --------------------------------------------------------------------


def test_a_template_fills_in_json_values():
    data = {"message": 'a "b"\nc', "ok": False, "exit_code": None, "volumes": 2, "failed": []}
    body = webhook.render(
        '{"text": "$message", "ok": $ok, "code": ${exit_code}, "n": $volumes,'
        ' "f": $failed, "cost": "$$5", "all": $data}',
        data,
    )
    assert json.loads(body) == {
        "text": 'a "b"\nc',
        "ok": False,
        "code": None,
        "n": 2,
        "f": [],
        "cost": "$5",
        "all": data,
    }


@pytest.mark.parametrize(
    "template, why",
    [
        ('{"text": "$mesage"}', "$mesage is not a field ("),
        ('{"text": $message}', "not JSON once filled in: "),
        ('{"price": "5 $"}', "not JSON once filled in: Invalid placeholder"),
    ],
)
def test_a_bad_template_is_one_line_when_the_config_is_loaded(template, why):
    doc = {"notify": [{"kind": "webhook", "url": "https://example.org/hook", "template": template}]}
    config, problems = validate(doc, "salvage.toml")
    assert config is None and len(problems) == 1
    assert str(problems[0]).startswith(f"salvage.toml: notify[0].template: {why}")


def test_healthchecks_hears_of_every_tide_by_default_and_of_nothing_else():
    target = {"kind": "healthchecks", "url": "https://hc.example/ping/uuid"}
    config, _ = validate({"notify": [target]}, "salvage.toml")
    assert config.notify[0].events == ("tide.start", "tide.success", "tide.failure")
    _, problems = validate({"notify": [dict(target, events=["volume.failure"])]}, "salvage.toml")
    assert [str(p) for p in problems] == [
        "salvage.toml: notify[0].events: a check follows whole tides:"
        " tide.start, tide.success, tide.failure"
    ]


def test_uptime_kuma_hears_of_tide_results_only_and_each_target_of_its_own_tides():
    target = {
        "kind": "uptime-kuma",
        "url": "https://kuma.example/api/push/tok?status=up&msg=OK&ping=",
    }
    config, _ = validate({"notify": [target]}, "salvage.toml")
    assert config.notify[0].events == ("tide.success", "tide.failure")
    assert config.notify[0].tides == ()
    raw = {
        "tides": {"daily": {}, "weekly": {}},
        "notify": [dict(target, events=["tide.start"]), dict(target, tides=["daily", "nope"])],
    }
    _, problems = validate(raw, "salvage.toml")
    assert [str(p) for p in problems] == [
        "salvage.toml: notify[0].events: a check follows whole tides: tide.success, tide.failure",
        'salvage.toml: notify[1].tides: no tide named "nope"',
    ]


def test_uptime_kuma_pushes_up_or_down_with_the_message_to_a_real_server():
    server = Receiver()
    try:
        push = server.url("/api/push/tok?status=up&msg=OK&ping=")
        config, problems = validate(
            {
                "tides": {"daily": {}, "weekly": {}},
                "notify": [
                    {"kind": "uptime-kuma", "url": push, "tides": ["daily"]},
                    {"kind": "uptime-kuma", "url": server.url("/api/push/weekly")},
                ],
            },
            "salvage.toml",
        )
        assert not problems
        kuma, everything = config.notify
        bad = _volume("shop_db", False, 'crane "tar" exited with 3')
        failed, good = _done(bad), _done(_volume("shop_db"))
        run = _run()
        for target in (kuma, everything):
            send(target, message.tide_started(run, SimpleNamespace(groups=[], problems=[])))
            send(target, message.tide_done(good, good.result))
            send(target, message.tide_done(failed, failed.result))
        weekly = _run()
        weekly.tide, weekly.result.tide = Tide("weekly"), "weekly"
        for target in (kuma, everything):  # another tide: not kuma's monitor
            send(target, message.tide_done(weekly, weekly.result))
    finally:
        server.close()
    assert [(r.method, r.path) for r in server.requests if r.path.startswith("/api/push/tok")] == [
        ("GET", "/api/push/tok?status=up&msg=OK&ping="),
        (
            "GET",
            "/api/push/tok?status=down&msg=salvage%20on%20box%3A%20tide%20daily%20failed%3A"
            "%201%20of%201%20volume%20failed%3A%20shop_db%3A%20crane%20%22tar%22%20exited"
            "%20with%203&ping=",
        ),
    ]
    weekly_pushes = [r.path.split("&")[0] for r in server.requests if "/weekly" in r.path]
    assert weekly_pushes == [
        "/api/push/weekly?status=up",
        "/api/push/weekly?status=down",
        "/api/push/weekly?status=up",
    ]  # every tide


# --- delivery, against a real HTTP server -------------------------------------------------


@pytest.fixture
def pauses():
    return []  # the pauses between tries, instead of sleeping them


def _request(url):
    return Request(url, b'{"a": 1}', {"Content-Type": "application/json"})


def test_a_server_error_is_tried_again(pauses):
    server = Receiver(503, 500)
    try:
        deliver(_request(server.url("/hook")), timeout=5, retries=2, pause=pauses.append)
    finally:
        server.close()
    assert [(r.method, r.path, r.body) for r in server.requests] == [
        ("POST", "/hook", b'{"a": 1}')
    ] * 3
    assert server.requests[0].headers["User-Agent"].startswith("salvage/")
    assert pauses == [1, 2]


def test_a_refusal_is_not_tried_again(pauses):
    server = Receiver(404)
    try:
        with pytest.raises(Undelivered, match=r"^HTTP 404 Not Found$"):
            deliver(_request(server.url("/gone")), timeout=5, retries=2, pause=pauses.append)
    finally:
        server.close()
    assert len(server.requests) == 1 and pauses == []


def test_a_server_that_does_not_answer_times_out(pauses):
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/hook"
        with pytest.raises(Undelivered, match=r"^no answer within 0.3 s \(2 tries\)$"):
            deliver(_request(url), timeout=0.3, retries=1, pause=pauses.append)
    assert pauses == [1]
