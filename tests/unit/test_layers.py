"""The tree's layers (README, "How it is built"): imports only point down, so each layer can
be read, and tested, without the ones above it; and no module imports itself through others,
even lazily."""

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


def module_name(path: Path) -> str:
    parts = path.relative_to(SALVAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)  # a package's __init__


def import_graph() -> dict:
    """module -> the salvage modules it imports, at module level or in a function (a lazy
    import still makes a circle, only a later one)."""
    paths = {module_name(path): path for path in SALVAGE.rglob("*.py")}
    graph: dict = {name: set() for name in paths}
    for name, path in paths.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                # from salvage.pkg import x: the module salvage.pkg.x if there is one
                found = [f"{node.module}.{a.name}" for a in node.names]
                targets = [t if t in paths else node.module for t in found]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            graph[name].update(t for t in targets if t in paths and t != name)
    return graph


def circles(graph: dict) -> list:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict = {}
    low: dict = {}
    stack: list = []
    found = []

    def visit(module):
        index[module] = low[module] = len(index)
        stack.append(module)
        for imported in sorted(graph[module]):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = []
            while component[-1:] != [module]:
                component.append(stack.pop())
            if len(component) > 1:
                found.append(set(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return found


def one_circle(graph: dict, component: set) -> str:
    """A shortest way round a component, from its first module back to it."""
    start = min(component)
    paths = {start: [start]}
    queue = [start]
    while queue:
        module = queue.pop(0)
        for imported in sorted(graph[module] & component):
            if imported == start:
                return " -> ".join(paths[module] + [start])
            if imported not in paths:
                paths[imported] = paths[module] + [imported]
                queue.append(imported)
    raise AssertionError(f"no way round {component}")


def test_no_module_imports_itself_through_others():
    graph = import_graph()
    found = [one_circle(graph, component) for component in circles(graph)]
    assert not found, "import circles:\n" + "\n".join(found)
