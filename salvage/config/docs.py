"""Write the generated parts of docs/configuration.md (the key tables) and
examples/salvage.toml (the settings with their defaults) from salvage/config/schema.py.

    python -m salvage.config.docs          # rewrite them (make config-docs)
    python -m salvage.config.docs --check  # exit 1 when they differ from the schema

Only the text between markers is generated (`<!-- generated: NAME -->` ... `<!-- end -->`,
`# generated: NAME` ... `# end generated`); the prose around them is written by hand."""

from __future__ import annotations

import json
import re
import sys
import textwrap
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Type

from salvage.config.schema import (
    DEFAULT_TIDE,
    Config,
    Crane,
    Docker,
    Inhibit,
    Notify,
    Tide,
    default,
    default_crane,
    keys,
)

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs/configuration.md"
EXAMPLE = ROOT / "examples/salvage.toml"


def toml(value: Any) -> str:
    """A value as TOML writes it (the few shapes defaults have)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string, for the strings of defaults
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml(v) for v in value) + "]"
    if isinstance(value, dict):
        items = ", ".join(f"{toml(k)} = {toml(v)}" for k, v in value.items())
        return "{ " + items + " }" if items else "{}"
    return repr(value)


def _default_text(cls: Type[Any], name: str) -> str:
    key, value = keys(cls)[name], default(cls, name)
    if key.shown:
        return key.shown
    if value is None:
        return "none"
    return f"`{toml(key.check.written(value))}`"


def table(cls: Type[Any]) -> List[str]:
    """docs/configuration.md's table of a section's keys."""
    lines = ["| key | default | |", "|---|---|---|"]
    for name, key in keys(cls).items():
        lines.append(f"| `{name}` | {_default_text(cls, name)} | {key.doc} |")
    return lines


def settings(cls: Type[Any], values: Any, commented: bool = False) -> List[str]:
    """examples/salvage.toml's lines for a section: each key with a hint, set to its value
    in `values` (the defaults) and saying so, or commented out with its example value.
    `commented`: every key commented out, each under its hint."""
    rows: List[Any] = []  # lines, or (setting, comment) pairs aligned at the end
    for name, key in keys(cls).items():
        if key.hint is None:
            continue
        shown = key.shown or toml(key.check.written(default(cls, name)))
        value = key.example if key.example is not None else key.check.written(getattr(values, name))
        if commented:
            note = f"{key.hint}. Default: {shown}."
            rows += [*textwrap.wrap(note, 90, initial_indent="# ", subsequent_indent="# ")]
            rows += [f"# {name} = {toml(value)}", ""]
        elif key.example is not None:
            rows.append((f"# {name} = {toml(value)}", f"{key.hint} (default {shown})"))
        else:
            rows.append((f"{name} = {toml(value)}", f"(default) {key.hint}"))
    if commented:
        return rows[:-1]
    width = max(len(setting) for setting, _ in rows) + 2
    return [f"{setting:<{width}}# {comment}".rstrip() for setting, comment in rows]


MARKDOWN: Dict[str, Callable[[], List[str]]] = {
    "top": lambda: table(Config),
    "docker": lambda: table(Docker),
    "tides": lambda: table(Tide),
    "inhibit": lambda: table(Inhibit),
    "cranes": lambda: table(Crane),
    "notify": lambda: table(Notify),
}
EXAMPLES: Dict[str, Callable[[], List[str]]] = {
    "top": lambda: settings(Config, Config(path=""), commented=True),
    "tides": lambda: settings(Tide, Tide(DEFAULT_TIDE)),
    "cranes": lambda: settings(Crane, default_crane()),
}


def fill(text: str, blocks: Dict[str, Callable[[], List[str]]], start: str, end: str) -> str:
    """`text` with the lines between each block's markers made again."""
    for name, lines in blocks.items():
        begin = start.format(name=name)
        pattern = re.compile(f"^{re.escape(begin)}\n.*?^{re.escape(end)}$", re.M | re.S)
        match = pattern.search(text)
        if not match:
            raise ValueError(f"no {begin!r} ... {end!r} in the file")
        text = text[: match.start()] + "\n".join([begin, *lines(), end]) + text[match.end() :]
    return text


def docs(text: str) -> str:
    return fill(text, MARKDOWN, "<!-- generated: {name} -->", "<!-- end -->")


def example(text: str) -> str:
    return fill(text, EXAMPLES, "# generated: {name}", "# end generated")


def main(argv: Optional[List[str]] = None) -> int:
    check = (argv if argv is not None else sys.argv[1:]) == ["--check"]
    made = {}
    for path, make in ((DOCS, docs), (EXAMPLE, example)):
        try:
            made[path] = (path.read_text(), make(path.read_text()))
        except (OSError, ValueError) as error:
            print(f"{path}: {error}", file=sys.stderr)
            return 2
    stale = [path for path, (old, new) in made.items() if new != old]
    for path in stale if not check else ():
        path.write_text(made[path][1])
    for path in stale:
        verb = "differs from salvage/config/schema.py: make config-docs" if check else "written"
        print(f"{path.relative_to(ROOT)}: {verb}", file=sys.stderr)
    return 1 if check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
