"""Asked when Train names another run while the one the wizard followed still trains: follow that one, start the
new one beside it, or go back."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from dbtui.widgets.key_footer import KeyFooter

LiveChoice = Literal["follow", "start"]


class LiveRunScreen(ModalScreen[LiveChoice | None]):
    """Returns "follow" (the live run), "start" (the draft's run as well) or None (back to Parameters)."""

    CSS_PATH = "live_run.tcss"
    HELP = """\
## A run is still training

The run the wizard followed still trains, and the parameters now name another run. **f**
follows the live run (its **s** stops it; then Esc and Ctrl+N start the new one alone).
**t** starts the new run too: both share the GPU, so each trains slower, and together they
may run out of its memory. Esc goes back to Parameters.
"""
    BINDINGS = [Binding("f", "choose('follow')", "Follow it"), Binding("t", "choose('start')", "Start too"),
                Binding("escape", "choose(None)", "Back")]

    def __init__(self, live: Path, new: Path) -> None:
        super().__init__()
        self.live, self.new = live.absolute(), new.absolute()

    def compose(self) -> ComposeResult:
        with Vertical(id="live-box"):
            yield Static(f"{self.live.name} is still training", markup=False, id="live-title")
            yield Static(f"It trains in {self.live}. The parameters now name another run, {self.new.name} "
                         f"({self.new}). Two runs on one GPU share its memory and speed, and may run out of memory. "
                         f"To train {self.new.name} alone, follow {self.live.name}, stop it (s), then Esc and Ctrl+N.",
                         markup=False, id="live-detail")
            with Horizontal(id="live-buttons"):
                # Labels are markup: a folder renamed on disk ("run [$x]") is a value, as Content.
                yield Button(Content(f"Follow {self.live.name} (f)"), id="live-follow", variant="primary")
                yield Button(Content(f"Start {self.new.name} too (t)"), id="live-start")
                yield Button("Back (Esc)", id="live-back")
        yield KeyFooter()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.action_choose({"live-follow": "follow", "live-start": "start"}.get(event.button.id or ""))

    def action_choose(self, choice: LiveChoice | None) -> None:
        self.dismiss(choice)
