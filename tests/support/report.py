"""The fault table printed at the end of a run: the rows that fault tests add (the `table`
fixture of tests/faults) travel with their test reports, so the table is whole under
pytest-xdist too, where the reports meet in the controller (tests/conftest.py's hooks)."""

from __future__ import annotations

FAULT_ROW = "fault row"
ROWS: list = []


def collect(report) -> None:
    if report.when == "call":
        ROWS.extend(value for key, value in report.user_properties if key == FAULT_ROW)


def write(terminalreporter) -> None:
    if not ROWS:
        return
    width = max(len(r[0]) for r in ROWS)
    terminalreporter.section("fault injection")
    for fault, expected, observed in sorted(ROWS):
        mark = "holds" if expected == observed else "BROKEN"
        terminalreporter.write_line(f"{fault:<{width}}  [{mark}]")
        terminalreporter.write_line(f"{'':<{width}}  expected: {expected}")
        terminalreporter.write_line(f"{'':<{width}}  observed: {observed}")
