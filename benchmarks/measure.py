"""Results, medians, and the ways the benchmarks time and weigh a process."""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Sequence, Tuple, TypeVar

from benchmarks.engine import ROOT

T = TypeVar("T")


@dataclass
class Result:
    """One row of the report: a figure and the bar it must not exceed."""

    key: str  # "B1"
    title: str
    figure: float
    bar: float
    unit: str  # "x" for a ratio, "MB"
    measured: str  # what was measured, with its median
    baseline: str  # what it was compared with, with its median
    error: str = ""

    @property
    def met(self) -> bool:
        return not self.error and self.figure <= self.bar

    @property
    def problem(self) -> str:
        """The error's last line, for a one-line table cell."""
        lines = self.error.strip().splitlines()
        return lines[-1][:200] if lines else ""

    def line(self) -> str:
        if self.error:
            return f"{self.key} {self.title}: ERROR {self.problem}"
        verdict = "meets" if self.met else "MISSES"
        return (
            f"{self.key} {self.title}: {self.figure:.2f}{self.unit} "
            f"(bar <= {self.bar:g}{self.unit}: {verdict}) - {self.measured}; vs {self.baseline}"
        )


def ratio(
    key: str,
    title: str,
    bar: float,
    measured: Tuple[str, Sequence[float]],
    baseline: Tuple[str, Sequence[float]],
) -> Result:
    """The median of `measured` over the median of `baseline`, both (what, figures)."""
    (what, values), (floor_what, floor) = measured, baseline
    return Result(
        key,
        title,
        median(values) / median(floor),
        bar,
        "x",
        f"{what} {spread(values)}",
        f"{floor_what} {spread(floor)}",
    )


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def spread(values: Sequence[float], unit: str = "s") -> str:
    """`1.23 s (1.20-1.31, n=5)`: the median, the range and the number of runs."""
    return f"{median(values):.3f} {unit} ({min(values):.3f}-{max(values):.3f}, n={len(values)})"


def interleaved(rounds: int, variants: Dict[str, Callable[[], float]]) -> Dict[str, List[float]]:
    """Run each variant once per round, rotating the order, so that a busy moment on the
    machine falls on every variant alike; each variant returns its own figure."""
    names = list(variants)
    figures: Dict[str, List[float]] = {name: [] for name in names}
    for round_ in range(rounds):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            figures[name].append(variants[name]())
    return figures


def retried(action: Callable[[], T], tries: int = 3) -> T:
    """On a shared engine another salvage's recovery removes every crane it finds, ours
    included, which fails our run: such a round is run again (and said so)."""
    for attempt in range(1, tries + 1):
        try:
            return action()
        except (RuntimeError, subprocess.CalledProcessError) as error:
            if attempt == tries:
                raise
            print(f"  round failed, run again: {str(error).strip().splitlines()[-1]}")
    raise AssertionError("unreachable")


def salvage_command(*args: str) -> List[str]:
    """salvage from this source tree (not whichever copy pip installed): run it with
    source_env, and with cwd=ROOT, as `-m` puts the working directory first on the path."""
    return [sys.executable, "-m", "salvage", *args]


def source_env(env: Dict[str, str]) -> Dict[str, str]:
    return dict(env, PYTHONPATH=str(ROOT))


def timed(command: List[str], env: Dict[str, str], check: bool = True) -> float:
    """Wall time of a command, its output discarded."""
    started = time.perf_counter()
    done = subprocess.run(
        command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    seconds = time.perf_counter() - started
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {done.returncode}: {done.stderr[-2000:]!r}")
    return seconds


# Forks and execs the command, then writes its peak RSS and exit code to argv[1]. The
# kernel counts in a process's ru_maxrss the memory it had before exec, so the command must
# be forked from a small process, not from this one (whose size it would otherwise report).
_LAUNCHER = """
import os, sys
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as out:
    out.write(f"{usage.ru_maxrss} {os.waitstatus_to_exitcode(status)}")
"""


def peak_rss(command: List[str], env: Dict[str, str]) -> Tuple[float, int, str]:
    """(peak resident set size in MB, exit code, output) of a command, from the kernel's
    own accounting of that process (wait4's ru_maxrss)."""
    with tempfile.TemporaryDirectory() as tmp:
        result = Path(tmp) / "rss"
        done = subprocess.run(
            [sys.executable, "-S", "-c", _LAUNCHER, str(result), *command],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{command}: {done.stdout[-2000:]!r}")
        kb, code = result.read_text().split()
    return int(kb) / 1024, int(code), done.stdout.decode("utf-8", "replace")


def run_salvage(config: Path, env: Dict[str, str], *args: str) -> str:
    """`salvage -c config ARGS`, which must exit 0; its output."""
    done = subprocess.run(
        salvage_command("-c", str(config), *args),
        env=source_env(env),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"salvage {' '.join(args)} exited {done.returncode}:\n"
            + done.stderr[-3000:]
            + done.stdout[-1000:]
        )
    return done.stdout + done.stderr


def write_config(path: Path, tmp: Path, tides: Dict[str, int], crane_image: str) -> Path:
    """A salvage.toml: each tide on its own tar crane with `max_concurrent` cranes at once,
    archives under tmp/backups."""
    lines = ['machine = "bench"', f'state_directory = "{tmp / "state"}"']
    for tide, concurrent in tides.items():
        lines += [f"[tides.{tide}]", f'crane = "tar{tide}"', f"max_concurrent = {concurrent}"]
        lines += [
            f"[cranes.tar{tide}]",
            f'image = "{crane_image}"',
            'pull = "never"',
            f"max_concurrent = {concurrent}",
            f'mounts = {{ "{tmp / "backups"}" = "/salvage/target" }}',
        ]
    (tmp / "state").mkdir(exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)  # salvage warns about a configuration others can read
    return path
