"""`python -m benchmarks [--only B1,B3] [--rounds N] [--report PATH]`: run the benchmarks,
print each figure as it comes, then the table; write docs/performance.md when every
benchmark ran. B3 and B5 share their stack and run together.
Exits 1 when a bar is missed or a benchmark fails. Everything created is removed at the
end, whatever happens (SIGTERM and Ctrl-C included)."""

from __future__ import annotations

import argparse
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Callable, List

from benchmarks import discovery, downtime, parallel, peers, report, staging, startup, throughput
from benchmarks.engine import ROOT, Engine
from benchmarks.measure import Result

ALL = ("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B9", "B10")


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("--only", default=",".join(ALL), help="comma-separated, e.g. B1,B4")
    parser.add_argument(
        "--report",
        help="where to write the report [default: docs/performance.md, when every benchmark runs]",
    )
    parser.add_argument("--rounds", type=int, help="runs of each side (for a quick try)")
    args = parser.parse_args()
    args.only = {item.strip().upper() for item in args.only.split(",") if item.strip()}
    if args.only - set(ALL):
        parser.error(f"unknown benchmark(s): {', '.join(sorted(args.only - set(ALL)))}")
    if args.report is None and args.only == set(ALL):
        args.report = str(ROOT / "docs/performance.md")
    return args


def _terminate(signum, _frame) -> None:
    raise SystemExit(128 + signum)  # unwinds through the cleanup


def main() -> int:
    args = _parse()
    signal.signal(signal.SIGTERM, _terminate)
    started = time.monotonic()
    results: List[Result] = []

    def bench(keys: str, title: str, run: Callable[[], List[Result]]) -> None:
        try:
            found = run()
        except Exception as error:  # the others still run; the row says what went wrong
            traceback.print_exc()
            found = [Result(keys, title, float("nan"), 0, "", "", "", error=str(error))]
        for result in found:
            print(result.line(), flush=True)
        results.extend(found)

    kw = {"rounds": args.rounds} if args.rounds else {}
    if "B4" in args.only:
        bench("B4", "start-up", lambda: startup.b4_startup(**kw))
    if "B8" in args.only:  # an engine of its own (an XFS data root)
        bench("B8", "size independence (XFS)", lambda: staging.b8_size(**kw))
    engine = Engine()
    try:
        print(f"engine {engine.host}", flush=True)
        if args.only - {"B4"}:
            engine.build_images()
        if args.only & {"B1", "B6"}:
            one = engine.volume("b1")
            engine.fill([one])
            if "B6" in args.only:
                bench("B6", "crane throughput", lambda: throughput.b6_throughput(engine, one, **kw))
            if "B1" in args.only:
                bench("B1", "downtime overhead", lambda: downtime.b1_overhead(engine, one, **kw))
        if "B2" in args.only:
            four = [engine.volume(f"b2-{i}") for i in range(4)]
            engine.fill(four)
            bench("B2", "parallel cranes", lambda: downtime.b2_parallel(engine, four, **kw))
        if "B7" in args.only:
            two = [engine.volume(f"b7-{i}") for i in range(2)]
            engine.fill(two)
            bench("B7", "staged downtime", lambda: staging.b7_staging(engine, two, **kw))
        if args.only & {"B3", "B5"}:
            bench("B3/B5", "scale", lambda: discovery.b3_b5_scale(engine, **kw))
        if "B9" in args.only:
            bench("B9", "vs backup-docker-to-local", lambda: peers.b9_peers(engine, **kw))
        if "B10" in args.only:
            bench("B10", "parallel stops", lambda: parallel.b10_parallel_stops(engine, **kw))
        results.sort(key=lambda r: int(r.key[1:].split("/")[0]))  # B10 after B9
        if args.report:
            report.write(engine, results, time.monotonic() - started, Path(args.report))
        else:
            print("\n".join(report.table(results)))
    finally:
        print("cleaning up", flush=True)
        engine.cleanup()
    return 0 if results and all(r.met for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
