"""Only salvage/engine talks to docker-py (and requests under it): the rest of salvage
names the engine's exceptions through salvage.engine.errors."""

import ast
from pathlib import Path

SALVAGE = Path(__file__).resolve().parents[2] / "salvage"
ENGINE_LIBRARIES = {"docker", "requests", "urllib3"}


def imported(path: Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield node.module


def test_only_the_engine_layer_imports_docker_py():
    outside = {
        f"{path.relative_to(SALVAGE.parent)}: {name}"
        for path in SALVAGE.rglob("*.py")
        if "engine" not in path.relative_to(SALVAGE).parts
        for name in imported(path)
        if name.split(".")[0] in ENGINE_LIBRARIES
    }
    assert outside == set()


def salvage_imports(path: Path):
    """The salvage modules one module imports, wherever the import statement is."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("salvage"):
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            yield from (a.name for a in node.names if a.name.startswith("salvage"))


def test_observers_import_no_observer():
    """The CLI builds the observers; salvage.report.observers knows none of them (no cycle)."""
    observers = (
        "salvage.report.history",
        "salvage.report.metrics",
        "salvage.report.notify",
        "salvage.report.progress",
        "salvage.systemd",
    )
    imported = set(salvage_imports(SALVAGE / "report" / "observers.py"))
    assert imported and not {name for name in imported if name.startswith(observers)}
