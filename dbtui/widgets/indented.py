"""Text indented as a block, for Rich renderables a Static shows: spaces before a line indent only its first row, and a
line wrapped at 80 columns ran on from the left edge."""

from __future__ import annotations

import re

from rich.console import Group, RenderableType
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

_LABELLED = re.compile(r"(\S.*?\S)( {2,})(\S.*)")  # "caching pass       0.07 GB  before …": a label, then its value


def indented(text: Text, columns: int = 2) -> Padding:
    """``text`` with every row it wraps to starting ``columns`` in."""
    return Padding(text, (0, 0, 0, columns))


def hanging(line: str, columns: int = 2) -> RenderableType:
    """A plain ``label   value`` line, ``columns`` in, each row it wraps to under its value: under the label, a
    wrapped value's end read as a line of its own."""
    match = _LABELLED.fullmatch(line)
    if match is None:
        return indented(Text(line), columns)
    label, gap, value = match.groups()
    return _hung(label + gap, value, columns)


def note_line(note: str, columns: int = 2) -> RenderableType:
    """``note: …`` (plain text), ``columns`` in, each row it wraps to under the note's text, as ``hanging`` hangs a
    value: under "note:", a wrapped note's end read as a line of its own."""
    return _hung("note: ", note, columns)


def _hung(label: str, value: str, columns: int) -> Padding:
    grid = Table.grid(expand=True)
    grid.add_column(width=len(label), no_wrap=True)
    grid.add_column(ratio=1)
    grid.add_row(Text(label), Text(value))
    return Padding(grid, (0, 0, 0, columns))


def markup_lines(lines: list[str | RenderableType]) -> Group:
    """Rich markup lines, each indented as a block by the spaces it starts with; a renderable as it is."""
    shown: list[RenderableType] = []
    for line in lines:
        if not isinstance(line, str):
            shown.append(line)
            continue
        text = line.lstrip(" ")
        depth = len(line) - len(text)
        shown.append(indented(Text.from_markup(text), depth) if depth else Text.from_markup(text))
    return Group(*shown)
