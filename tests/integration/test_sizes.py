"""What a crane reports it stored (/salvage/meta/result.json), from real runs of the
reference tar and restic cranes: the bytes in the archive or the repository, the volume's
bytes and files, the snapshot id; carried by history, status, metrics and notifications.
A report that cannot be trusted is ignored with one warning, and the backup stands."""

from __future__ import annotations

import json
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families
from support.receiver import Receiver
from test_restore import RESTIC, TAR, _in, cranes  # noqa: F401 - the cranes fixture

# 3 files, 105000 bytes of the volume's own; random bytes, so nothing compresses them away.
FILL = "head -c 100000 /dev/urandom > /v/random && head -c 5000 /dev/zero > /v/zeros && : > /v/e"
READ, FILES = 105000, 3


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


def _config(salvage, crane: str, image: str, receiver, extra: str = "") -> None:
    password = salvage.tmp / "restic-password"
    password.write_text("correct horse battery staple")
    password.chmod(0o600)
    (salvage.tmp / "textfile").mkdir(exist_ok=True)
    salvage.write_config(
        f"""
        machine = "testhost"
        state_directory = "{salvage.tmp}/state"
        metrics_directory = "{salvage.tmp}/textfile"
        [tides.{salvage.tide}]
        crane = "{crane}"
        {extra}
        [cranes.{crane}]
        image = "{image}"
        pull = "never"
        mounts = {{ "@BACKUPS@" = "/salvage/target" }}
        secrets = {{ RESTIC_PASSWORD = "{password}" }}
        [[notify]]
        kind = "webhook"
        url = "{receiver.url("/hook")}"
        events = ["volume.success"]
        """
    )


def _metrics(salvage) -> dict:
    text = (salvage.tmp / "textfile" / "salvage.prom").read_text()
    return {
        (s.name, s.labels.get("volume")): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


@pytest.mark.parametrize("crane", ["tar", "restic"])
def test_the_size_a_crane_reports_is_what_it_stored(stack, salvage, api, receiver, request, crane):
    base = request.getfixturevalue("cranes")  # the Debian base the cranes were built on
    volume = stack.volume("data")
    _in(api, base, volume, FILL)
    stack.container("app", [volume], labels={f"salvage.tide.{stack.tide}": f"g:{volume}"})
    _config(salvage, crane, TAR if crane == "tar" else RESTIC, receiver)
    done = salvage("run", check_code=0)

    (run,) = json.loads(salvage("history", "--json", check_code=0).stdout)
    (saved,) = run["volumes"]
    (newest, *_) = json.loads(salvage("snapshots", volume, "--json", check_code=0).stdout)
    assert saved["snapshot"] == newest["id"]
    assert saved["bytes_read"] == READ and saved["files"] == FILES
    if crane == "tar":
        (archive,) = salvage.archives()[volume]
        assert saved["size"] == archive.stat().st_size == newest["size"]
    else:  # what restic added: at least the random bytes, and little besides the data
        assert 100000 <= saved["size"] <= READ + 10000
    assert f"{saved['size']} bytes stored" in done.stderr

    (tide,) = json.loads(salvage("status", "--json", check_code=0).stdout)
    (status,) = tide["volumes"]
    assert (status["size"], status["bytes_read"], status["files"]) == (saved["size"], READ, FILES)
    assert _metrics(salvage)["salvage_volume_last_size_bytes", volume] == saved["size"]
    assert _metrics(salvage)["salvage_volume_last_read_bytes", volume] == READ
    assert _metrics(salvage)["salvage_volume_last_files", volume] == FILES
    (told,) = [r.json for r in receiver.at("/hook")]
    assert (told["size"], told["bytes_read"], told["files"], told["snapshot"]) == (
        saved["size"],
        READ,
        FILES,
        saved["snapshot"],
    )
    if crane == "restic":  # an unchanged volume again: restic adds (and says) next to nothing
        time.sleep(1)  # a snapshot's time is the run's second: make it another one
        salvage("run", check_code=0)
        again = json.loads(salvage("history", "--json", "-n", "1").stdout)[0]["volumes"][0]
        assert again["size"] < 5000 and again["bytes_read"] == READ  # metadata, manifest
        assert again["snapshot"] != saved["snapshot"]


def test_the_busybox_tar_crane_reports_its_archive(stack, salvage):
    volume = stack.volume("data")
    stack.container(
        "app",
        [volume],
        command="head -c 3000 /dev/zero > /data/f; sleep 3600",
        labels={f"salvage.tide.{stack.tide}": f"g:{volume}"},
    )
    salvage.use_tar()
    salvage("run", check_code=0)
    (run,) = json.loads(salvage("history", "--json").stdout)
    (saved,) = run["volumes"]
    (archive,) = salvage.archives()[volume]
    assert saved["size"] == archive.stat().st_size and saved["snapshot"] == archive.name[:-7]
    assert (saved["bytes_read"], saved["files"]) == (3000, 1)


@pytest.mark.parametrize(
    "written, why",
    [
        ("head -c 70000 /dev/zero", "larger than 65536 bytes"),
        ("echo '[1, 2]'", "not a JSON object"),
        ("echo '{\"bytes_stored\": -5}'", "bytes_stored: -5 is out of range"),
        ('echo \'{"files": "many"}\'', 'files: "many" is not a whole number'),
        ('echo \'{"snapshot": "a b"}\'', 'snapshot: "a b" is not an id'),
        ("printf '\\377{'", "not JSON"),
    ],
)
def test_an_untrusted_report_is_ignored_with_one_warning(stack, salvage, written, why):
    volume = stack.volume("data")
    stack.container("app", [volume], labels={f"salvage.tide.{stack.tide}": f"g:{volume}"})
    salvage.use_script(f"{written} > /salvage/meta/result.json")
    done = salvage("run", check_code=0)  # the backup itself succeeded
    (line,) = [x for x in done.stderr.splitlines() if "result.json ignored" in x]
    assert f"volume {volume}: crane script: /salvage/meta/result.json ignored: {why}" in line
    (run,) = json.loads(salvage("history", "--json").stdout)
    (saved,) = run["volumes"]
    assert saved["ok"] and saved["size"] is None and saved["snapshot"] is None


def test_a_backup_below_shrink_alert_is_a_warning_an_event_and_a_metric(stack, salvage, api):
    volume = stack.volume("data")
    app = stack.container(
        "app",
        [volume],
        command="head -c 3000 /dev/zero > /data/f; sleep 3600",
        labels={f"salvage.tide.{stack.tide}": f"g:{volume}"},
    )
    server = Receiver()
    try:
        textfile = salvage.tmp / "textfile"
        textfile.mkdir()
        salvage.use_tar(
            tide="shrink_alert = 0.5",
            crane=f'[[notify]]\nkind = "webhook"\nurl = "{server.url("/hook")}"\n'
            'events = ["volume.shrunk"]',
        )
        config = salvage.config.read_text()
        salvage.write_config(f'metrics_directory = "{textfile}"\n' + config)
        first = salvage("run", check_code=0)
        assert "shrank" not in first.stderr and server.requests == []
        time.sleep(1)  # another second: another snapshot

        # 2000 of 3000 bytes: two thirds, above the alert; then 100: a thirtieth, below it.
        for size, expect in ((2000, False), (100, True)):
            shell = api.exec_create(app, ["sh", "-c", f"head -c {size} /dev/zero > /data/f"])
            api.exec_start(shell)
            time.sleep(1)
            done = salvage("run", check_code=0)  # a warning, not a failure
            assert ("shrank" in done.stderr) is expect, done.stderr
        warning = f"volume {volume}: backup shrank to 100 bytes read from 2000 in the previous"
        assert warning in done.stderr and "below shrink_alert 0.5" in done.stderr

        (told,) = [r.json for r in server.at("/hook")]
        assert told["event"] == "volume.shrunk" and told["volume"] == volume
        assert told["bytes_read"] == 100 and "shrank to 100 bytes read" in told["message"]
        text = (textfile / "salvage.prom").read_text()
        assert f'salvage_volume_last_shrunk{{tide="{stack.tide}",volume="{volume}"}} 1' in text
        (tide,) = json.loads(salvage("status", "--json", check_code=0).stdout)
        assert tide["volumes"][0]["shrunk"].startswith("shrank to 100 bytes read")
        assert "SHRUNK" in salvage("status").stdout
    finally:
        server.close()
