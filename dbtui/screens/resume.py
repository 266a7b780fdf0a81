"""Asked when a profile's run folder already holds checkpoints: resume, or leave it alone."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from dbtui.widgets.key_footer import KeyFooter


class ResumeScreen(ModalScreen[bool]):
    """True: resume from the latest checkpoint. False: do nothing (the user renames the run)."""

    HELP = """\
## Resume?

The run folder of this name already holds checkpoints of an earlier run. **r** resumes
from the latest one. Esc starts nothing: go back and change the run name to start afresh;
the old run stays on disk.
"""

    CSS_PATH = "resume.tcss"
    BINDINGS = [Binding("r", "choose(True)", "Resume"), Binding("escape", "choose(False)", "Cancel")]

    def __init__(self, detail: str) -> None:
        super().__init__()
        self.detail = detail

    def compose(self) -> ComposeResult:
        with Vertical(id="resume-box"):
            yield Static("[b]This run already has checkpoints[/b]")
            yield Static(self.detail, markup=False, id="resume-detail")
            yield Static("Resume from the latest one, or go back and change the run name.")
            with Horizontal(id="resume-buttons"):
                yield Button("Resume (r)", id="resume-yes", variant="primary")
                yield Button("Cancel (Esc)", id="resume-no")
        yield KeyFooter()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "resume-yes")

    def action_choose(self, resume: bool) -> None:
        self.dismiss(resume)
