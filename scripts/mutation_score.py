"""After `mutmut run` (make mutate): the share of mutants the unit tests killed, per module
and in all, and each survivor by name (`mutmut show NAME` shows its change). Exits 1 below
the bar of docs/testing.md. A mutant with no test that reaches it counts as a survivor; a
timeout counts as killed (the tests noticed: they hung)."""

import collections
import subprocess
import sys

BAR = 90.0
KILLED = {"killed", "timeout", "caught by type check"}

answer = subprocess.run(
    [f"{sys.prefix}/bin/mutmut", "results", "--all", "true"],
    check=True,
    capture_output=True,
    text=True,
).stdout
by_module = collections.defaultdict(collections.Counter)
survivors = []
for line in answer.splitlines():
    name, _, status = line.strip().rpartition(": ")
    if not name:
        continue
    module = name.rsplit(".", 1)[0]  # a function's (x_f) or a method's (xǁClassǁf)
    by_module[module][status in KILLED] += 1
    if status not in KILLED:
        survivors.append(f"{name}: {status}")

if not by_module:
    sys.exit("no mutants: run `mutmut run` first")
killed = sum(c[True] for c in by_module.values())
total = sum(c[True] + c[False] for c in by_module.values())
for module, counts in sorted(by_module.items()):
    print(f"{module:32} {counts[True]:5} / {counts[True] + counts[False]:5} killed")
score = 100.0 * killed / total
print(f"{'in all':32} {killed:5} / {total:5} killed: {score:.1f}% (bar: {BAR:.0f}%)")
for survivor in survivors:
    print(f"  {survivor}")
sys.exit(0 if score >= BAR else 1)
