"""What a run did: per volume and per tide. Shared by the run, its log, and its reporters."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, List, Optional

from salvage.core.model import Problem
from salvage.errors import EXIT_CONFIG, EXIT_FAILED, EXIT_OK


@dataclass
class VolumeResult:
    volume: str
    ok: bool
    message: str = ""  # why it failed, in one line
    exit_code: Optional[int] = None  # the crane's
    seconds: float = 0.0  # the crane's run time
    group: str = ""
    crane: str = ""
    started: float = 0.0  # epoch seconds
    downtime: float = 0.0  # how long its group's containers were down
    # What the crane reported (/salvage/meta/result.json), when it did:
    size: Optional[int] = None  # bytes this backup stored
    bytes_read: Optional[int] = None  # bytes of the volume it read
    files: Optional[int] = None
    snapshot: Optional[str] = None
    shrunk: Optional[str] = None  # why its size is a warning (the tide's shrink_alert)


@dataclass
class TideResult:
    tide: str
    run_id: str = ""
    trigger: str = "manual"
    started: float = 0.0  # epoch seconds
    ended: float = 0.0
    volumes: List[VolumeResult] = field(default_factory=list)
    problems: List[Problem] = field(default_factory=list)  # in labels: exit 2
    errors: List[Problem] = field(default_factory=list)  # while running: exit 1
    downtime: float = 0.0
    interrupted: Optional[str] = None  # why the run was cut short

    @property
    def seconds(self) -> float:
        return max(0.0, self.ended - self.started)

    @property
    def failed(self) -> List[VolumeResult]:
        return [v for v in self.volumes if not v.ok]

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    @property
    def exit_code(self) -> int:
        if self.problems:
            return EXIT_CONFIG
        return EXIT_FAILED if self.errors or self.failed or self.interrupted else EXIT_OK

    def summary(self) -> str:
        ok = len(self.volumes) - len(self.failed)
        text = (
            f"tide {self.tide}: {ok} volume{'s' * (ok != 1)} backed up, {len(self.failed)} failed,"
            f" {len(self.problems)} label problem{'s' * (len(self.problems) != 1)};"
            f" containers down {self.downtime:.1f} s in all; took {self.seconds:.1f} s"
        )
        return text + (f"; interrupted: {self.interrupted}" if self.interrupted else "")


def stored(report: Any) -> str:  # a crane's backup_report.Report, or None
    """What a crane reported, for a log line: " (48211 bytes stored, 12 files)", or ""."""
    if report is None:
        return ""
    parts = [f"{report.bytes_stored} bytes stored"] if report.bytes_stored is not None else []
    if report.bytes_read is not None:
        parts.append(f"{report.bytes_read} bytes read")
    if report.files is not None:
        parts.append(f"{report.files} files")
    if report.snapshot:
        parts.append(f"snapshot {report.snapshot}")
    return f" ({', '.join(parts)})" if parts else ""
