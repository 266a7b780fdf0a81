"""Ask before a save replaces a file that is already there (its comments would be lost)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from dbtui.widgets.key_footer import KeyFooter

OverwriteChoice = Literal["overwrite", "new"]
NARROW_COLUMNS = 56  # below this the three buttons in a row would run off the box


def free_name(path: Path) -> Path:
    """``name-2.toml``, ``name-3.toml``…: the first sibling of ``path`` that does not exist."""
    number = 2
    while True:
        candidate = path.with_name(f"{path.stem}-{number}{path.suffix}")
        if not os.path.exists(candidate):  # False for a name too long too: the save then says so
            return candidate
        number += 1


class OverwriteScreen(ModalScreen[OverwriteChoice | None]):
    """Returns "overwrite", "new" (save beside it under a free name) or None (cancel)."""

    CSS_PATH = "overwrite.tcss"
    HELP = """\
## Overwrite?

This profile file is there already. **n** saves beside it under a free name and leaves
it as it is. **o** replaces it with the wizard's values: comments written in it are lost.
Esc cancels the save.
"""
    BINDINGS = [
        Binding("escape", "dismiss(None)", "Cancel"),
        Binding("o", "dismiss('overwrite')", "Overwrite"),
        Binding("n", "dismiss('new')", "New name"),
    ]

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path

    def compose(self) -> ComposeResult:
        with Vertical(id="ow-box"):
            yield Static(Content.from_markup("[b]$path already exists.[/b]", path=str(self.path)))
            yield Static(
                "Overwriting replaces it with the wizard's values; comments in it are lost. "
                f"A new name keeps it and saves to {free_name(self.path).name}.",
                classes="help", markup=False,
            )
            with Horizontal(id="ow-buttons"):
                yield Button("New name (n)", id="ow-new", variant="primary")
                yield Button("Overwrite (o)", id="ow-overwrite", variant="warning")
                yield Button("Cancel (Esc)", id="ow-cancel")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.query_one("#ow-new", Button).focus()

    def on_resize(self, event: events.Resize) -> None:
        # The three buttons in a row need about 55 columns; Textual's layouts do not wrap them.
        self.query_one("#ow-buttons").set_class(event.size.width < NARROW_COLUMNS, "-narrow")

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        choices: dict[str | None, OverwriteChoice | None] = {"ow-new": "new", "ow-overwrite": "overwrite"}
        self.dismiss(choices.get(event.button.id))
