"""What a terminal shows beyond plain lines: colour only on a TTY (never with NO_COLOR set,
nor on a dumb terminal), marks that fall back to words, and aligned tables."""

from __future__ import annotations

import os
from typing import List, Sequence, Tuple, Union

CODES = {"bold": "1", "dim": "2", "red": "31", "green": "32", "yellow": "33"}

Cell = Union[str, Tuple[str, str]]  # text, or (text, style)


def colour(stream) -> bool:
    """https://no-color.org: NO_COLOR set to anything but empty turns colour off."""
    tty = getattr(stream, "isatty", None)
    return (
        bool(tty and tty()) and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"
    )


class Paint:
    def __init__(self, stream) -> None:
        self.enabled = colour(stream)
        utf8 = (getattr(stream, "encoding", None) or "").lower().replace("-", "") == "utf8"
        self.ok, self.failed = ("✓", "✗") if utf8 else ("ok", "FAILED")

    def __call__(self, text: str, *styles: str) -> str:
        if not self.enabled or not styles:
            return text
        return f"\033[{';'.join(CODES[s] for s in styles)}m{text}\033[0m"

    def table(self, header: Sequence[str], rows: Sequence[Sequence[Cell]]) -> List[str]:
        """Columns aligned on the text (not on colour codes); the header dimmed."""
        cells = [[(c, "") if isinstance(c, str) else c for c in row] for row in rows]
        cells.insert(0, [(h, "dim") for h in header])
        widths = [max(len(row[i][0]) for row in cells if i < len(row)) for i in range(len(header))]
        lines = []
        for row in cells:
            parts = []
            for i, (text, style) in enumerate(row):
                padded = text if i == len(row) - 1 else text.ljust(widths[i])
                parts.append(self(padded, style) if style else padded)
            lines.append("  ".join(parts).rstrip())
        return lines
