"""The tree's layers (README, "How it is built"): imports only point down, so each layer can
be read, and tested, without the ones above it."""

import ast
from pathlib import Path

SALVAGE = Path(__file__).resolve().parents[2] / "salvage"

# layer -> the salvage modules it may import besides its own (prefixes)
BELOW = {
    "core": ("salvage.errors", "salvage.config.schema"),
    "engine": ("salvage.errors", "salvage.core", "salvage.config"),
    "safety": ("salvage.errors", "salvage.core", "salvage.config", "salvage.engine"),
    "crane": ("salvage.errors", "salvage.core", "salvage.config", "salvage.engine"),
}
ABOVE_ALL = ("salvage.cli", "salvage.actions")


def imports(path: Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("salvage"):
            if node.module == "salvage":  # from salvage import x: the module is salvage.x
                yield from (f"salvage.{alias.name}" for alias in node.names)
            else:
                yield node.module
        elif isinstance(node, ast.Import):
            yield from (a.name for a in node.names if a.name.startswith("salvage"))


def offending(layer: str, allowed) -> set:
    own = f"salvage.{layer}"
    return {
        f"{path.relative_to(SALVAGE.parent)}: {name}"
        for path in (SALVAGE / layer).rglob("*.py")
        for name in imports(path)
        if not below(name, (own, "salvage.__version__", *allowed))
    }


def below(name: str, allowed) -> bool:
    return any(name == a or name.startswith(a + ".") for a in allowed)


def test_the_core_imports_only_errors_and_the_config_declarations():
    assert offending("core", BELOW["core"]) == set()


def test_engine_safety_and_crane_import_only_layers_below_them():
    for layer in ("engine", "safety", "crane"):
        assert offending(layer, BELOW[layer]) == set(), layer


def test_only_the_cli_and_the_actions_import_the_actions():
    found = {
        f"{path.relative_to(SALVAGE.parent)}: {name}"
        for path in SALVAGE.rglob("*.py")
        if path.parent.name != "actions" and path.name not in ("cli.py", "__main__.py")
        for name in imports(path)
        if below(name, ABOVE_ALL)
    }
    assert found == set()
