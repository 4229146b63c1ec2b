"""Prometheus metrics for node_exporter's textfile collector.

After each tide, `<metrics_directory>/salvage.prom` is written whole from the history of
every configured tide: a temporary file (not named *.prom, so the collector skips it),
then a rename, so the collector never reads half a file.
"""

from __future__ import annotations

import os
from typing import Dict, List, Tuple

from salvage.report.history import History
from salvage.report.observers import Observer

FILE = "salvage.prom"

# name -> its HELP text. All are gauges, labelled by tide, or by tide and volume.
METRICS: Dict[str, str] = {
    "salvage_tide_last_run_timestamp_seconds": "When the tide's last finished run ended.",
    "salvage_tide_last_run_success": "1 if the tide's last run backed up every volume, else 0.",
    "salvage_tide_last_run_duration_seconds": "How long the tide's last run took.",
    "salvage_tide_last_run_downtime_seconds": "How long containers were down in the last run.",
    "salvage_tide_last_run_failed_volumes": "Volumes that failed in the tide's last run.",
    "salvage_tide_last_success_timestamp_seconds": "When the tide last succeeded (0: never).",
    "salvage_volume_last_success": "1 if the volume's last backup succeeded, else 0.",
    "salvage_volume_last_success_timestamp_seconds": "When it was last backed up (0: never).",
    "salvage_volume_last_duration_seconds": "How long the volume's last backup took.",
    "salvage_volume_last_downtime_seconds": "How long its containers were down for it.",
    "salvage_volume_last_size_bytes": "Bytes its last good backup stored, if the crane said.",
    "salvage_volume_last_read_bytes": "Bytes its last good backup read, if the crane said.",
    "salvage_volume_last_files": "Files in its last good backup, if the crane said.",
    "salvage_volume_last_shrunk": "1 if its last backup fell below the tide's shrink_alert.",
    "salvage_volume_last_verify_timestamp_seconds": "When `salvage verify` last checked it.",
    "salvage_volume_last_verify_success": "1 if its last `salvage verify` found it intact.",
}

Sample = Tuple[str, Dict[str, str], float]


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    return repr(int(value)) if float(value).is_integer() else repr(float(value))


def samples(history: History, tides: List[str]) -> List[Sample]:
    found: List[Sample] = []
    for tide in tides:
        run = history.last_run(tide, finished=True)
        if run is None:
            continue
        labels = {"tide": tide}
        found += [
            ("salvage_tide_last_run_timestamp_seconds", labels, run["ended"]),
            ("salvage_tide_last_run_success", labels, int(run["result"] == "success")),
            ("salvage_tide_last_run_duration_seconds", labels, run["seconds"]),
            ("salvage_tide_last_run_downtime_seconds", labels, run["downtime"]),
            (
                "salvage_tide_last_success_timestamp_seconds",
                labels,
                history.last_success(tide) or 0,
            ),
        ]
        volumes = history.volumes(tide)
        failed = sum(
            1 for v in volumes if v["last"]["run_id"] == run["run_id"] and not v["last"]["ok"]
        )
        found.append(("salvage_tide_last_run_failed_volumes", labels, failed))
        for volume in volumes:
            last, success = volume["last"], volume["last_success"]
            labels = {"tide": tide, "volume": volume["volume"]}
            found += [
                ("salvage_volume_last_success", labels, int(last["ok"])),
                (
                    "salvage_volume_last_success_timestamp_seconds",
                    labels,
                    success["ended"] if success else 0,
                ),
                ("salvage_volume_last_duration_seconds", labels, last["seconds"]),
                ("salvage_volume_last_downtime_seconds", labels, last["downtime"]),
            ]
            for name, key in (
                ("salvage_volume_last_size_bytes", "size"),
                ("salvage_volume_last_read_bytes", "bytes_read"),
                ("salvage_volume_last_files", "files"),
            ):
                if success and success[key] is not None:
                    found.append((name, labels, success[key]))
            found.append(("salvage_volume_last_shrunk", labels, int(bool(last["shrunk"]))))
            verified = history.last_verify(tide, volume["volume"])
            if verified:
                found += [
                    ("salvage_volume_last_verify_timestamp_seconds", labels, verified["ended"]),
                    ("salvage_volume_last_verify_success", labels, int(verified["ok"])),
                ]
    return found


def render(found: List[Sample]) -> str:
    """The Prometheus text format: each metric's HELP and TYPE, then its samples."""
    lines = []
    for name, text in METRICS.items():
        mine = [(labels, value) for metric, labels, value in found if metric == name]
        if not mine:
            continue
        lines += [f"# HELP {name} {text}", f"# TYPE {name} gauge"]
        for labels, value in mine:
            pairs = ",".join(f'{key}="{_label(text)}"' for key, text in labels.items())
            lines.append(f"{name}{{{pairs}}} {_number(value)}")
    return "\n".join(lines) + "\n"


def write(directory: str, text: str) -> str:
    if not os.path.isdir(directory):
        raise OSError(f"metrics_directory {directory} is not a directory")
    path = os.path.join(directory, FILE)
    temporary = os.path.join(directory, f".{FILE}.{os.getpid()}.tmp")
    try:
        with open(temporary, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, 0o644)  # node_exporter often runs as another user
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return path


class Metrics(Observer):
    """Rewrites the .prom file after each tide (after the Recorder has written its run)."""

    def __init__(self, config) -> None:
        self.config = config

    def tide_done(self, run, result) -> None:
        history = History(self.config.state_directory)
        text = render(samples(history, sorted(self.config.tides)))
        write(self.config.metrics_directory, text)
