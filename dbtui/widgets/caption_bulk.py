"""The caption screen's bulk row: a tag, and the buttons for the jobs over every caption."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Button

from dbtui.widgets.ordered_keys import OrderedInput


class CaptionBulk(Horizontal):
    """Add tag, Remove tag, Undo and Auto-caption; the caption screen acts on their presses (captions.tcss lays
    them out)."""

    def __init__(self) -> None:
        super().__init__(id="cap-bulk")

    def compose(self) -> ComposeResult:
        yield OrderedInput(placeholder="tag (Enter: Add tag)", id="cap-tag", compact=True)
        yield Button("Add tag", id="cap-add", compact=True)
        yield Button("Remove tag", id="cap-remove", compact=True)
        yield Button("Undo", id="cap-undo", compact=True)
        yield Button("Auto-caption", id="cap-auto", compact=True)
