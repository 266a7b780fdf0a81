"""The step indicator at the top of each wizard screen, and the Back/Next bar at its foot."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Button, Static

from dbtui.session import STEPS


class StepIndicator(Static):
    """``Hardware › Model › [Dataset] › Parameters › Training`` with the current step lit."""

    DEFAULT_CSS = """
    StepIndicator { height: 1; padding: 0 1; background: $panel; color: $text-muted; }
    """

    def __init__(self, current: int) -> None:
        parts = []
        for index, name in enumerate(STEPS):
            label = f"{index + 1} {name.capitalize()}"
            parts.append(f"[b reverse] {label} [/]" if index == current else f" {label} ")
        super().__init__("›".join(parts))


class NavBar(Horizontal):
    """Back and Next buttons; the screen's next/back actions do the work."""

    DEFAULT_CSS = """
    NavBar { height: 1; margin-top: 1; align-horizontal: right; padding: 0 1; }
    NavBar Button { margin-left: 1; min-width: 10; }
    NavBar #nav-hint { width: 1fr; color: $text-muted; }
    """

    def __init__(self, next_label: str = "Next", hint: str = "") -> None:
        super().__init__()
        self.next_label = next_label
        self.hint = hint

    def compose(self) -> ComposeResult:
        yield Static(self.hint, id="nav-hint")
        yield Button("Back", id="nav-back", compact=True)
        yield Button(self.next_label, id="nav-next", variant="primary", compact=True)
