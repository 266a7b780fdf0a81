"""Text indented as a block, for Rich renderables a Static shows: spaces before a line indent only its first row, and a
line wrapped at 80 columns ran on from the left edge."""

from __future__ import annotations

from rich.console import Group
from rich.padding import Padding
from rich.text import Text


def indented(text: Text, columns: int = 2) -> Padding:
    """``text`` with every row it wraps to starting ``columns`` in."""
    return Padding(text, (0, 0, 0, columns))


def markup_lines(lines: list[str]) -> Group:
    """Rich markup lines, each indented as a block by the spaces it starts with."""
    shown: list[Text | Padding] = []
    for line in lines:
        text = line.lstrip(" ")
        depth = len(line) - len(text)
        shown.append(indented(Text.from_markup(text), depth) if depth else Text.from_markup(text))
    return Group(*shown)
