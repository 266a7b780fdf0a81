"""The Training step's buttons: a live run's controls and Detach; a run that has ended shows its EndActions in the
controls' place."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Button

from dbtui.widgets.end_actions import EndActions

# (what, label, key): the screen's bindings and on_button_pressed act on them by ``what``.
CONTROLS = [("stop", "Stop & save", "s"), ("save", "Save now", "c"), ("sample", "Sample now", "p")]
DETACH = ("detach", "Detach", "d")


class RunControls(Horizontal):
    """One row of buttons; training.tcss lays them out."""

    def __init__(self, engine: Any) -> None:
        super().__init__(id="tr-buttons")
        self.engine = engine

    def compose(self) -> ComposeResult:
        for what, label, key in CONTROLS:
            yield Button(f"{label} ({key})", id=f"tr-{what}", compact=True)
        yield EndActions(self.engine)
        what, label, key = DETACH
        yield Button(f"{label} ({key})", id=f"tr-{what}", compact=True)

    def live(self, live: bool) -> None:
        """The controls shown and working while the run trains, hidden and disabled once it has ended."""
        for what, _, _ in CONTROLS:
            button = self.query_one(f"#tr-{what}", Button)
            button.display, button.disabled = live, not live

    def hide(self) -> None:
        """Nothing runs (it never started): no control to show."""
        for what, _, _ in CONTROLS:
            self.query_one(f"#tr-{what}", Button).display = False
