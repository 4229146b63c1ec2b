"""The tar crane's `volumes` action (what `restore --machine M --all` brings back), run as
the crane runs it, on the host's sh: every archive format counts, a dump alone does not."""

from __future__ import annotations

import json
import os
import subprocess

from support.harness import ROOT

ENTRYPOINT = ROOT / "salvage/crane/images/tar/entrypoint.sh"


def volumes(target) -> list:
    done = subprocess.run(
        ["sh", str(ENTRYPOINT)],
        env=dict(
            os.environ, SALVAGE_ACTION="volumes", SALVAGE_MACHINE_NAME="m", TAR_TARGET=str(target)
        ),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    return sorted(json.loads(line)["volume"] for line in done.stdout.splitlines())


def test_volumes_lists_archives_of_every_format_and_not_a_dump_alone(tmp_path):
    for volume, name in (
        ("zst", "20261207T030000Z.tar.zst"),  # the default wherever the image has zstd
        ("gz", "20261207T030000Z.tar.gz"),
        ("plain", "20261207T030000Z.tar"),
        ("dumped", "20261207T030000Z.dump.gz"),  # a database's dump: no volume to restore
        ("partial", ".20261207T030000Z.tar.zst.partial"),  # a backup that never finished
    ):
        (tmp_path / "m" / volume).mkdir(parents=True)
        (tmp_path / "m" / volume / name).write_bytes(b"x")
    assert volumes(tmp_path) == ["gz", "plain", "zst"]
