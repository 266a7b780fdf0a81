"""What every wizard step shares: the session, the engine, the step bar, Next/Back."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Button

from dbtui.engine_facade import Engine
from dbtui.messages import WorkFailed
from dbtui.session import Session
from dbtui.widgets.key_footer import KeyFooter
from dbtui.widgets.wizard_nav import NavBar, StepIndicator


class WizardScreen(Screen):
    """A step of the wizard. Subclasses set ``STEP`` and write ``compose_body``."""

    STEP = 0
    NEXT_LABEL = "Next"
    BINDINGS = [
        Binding("ctrl+n", "next", "Next", priority=True),
        Binding("escape", "back", "Back"),
    ]

    def __init__(self, session: Session, engine: Engine) -> None:
        super().__init__()
        self.session = session
        self.engine = engine

    def compose(self) -> ComposeResult:
        yield StepIndicator(self.STEP)
        yield from self.compose_body()
        yield NavBar(self.NEXT_LABEL)
        yield KeyFooter()

    def compose_body(self) -> ComposeResult:
        yield from ()

    def leave_problem(self) -> str | None:
        """Why the user may not go on yet (shown as a notification), or None."""
        return None

    def action_next(self) -> None:
        problem = self.leave_problem()
        if problem:
            self.notify(problem, severity="warning", title="Not yet")
            return
        self.go_next()

    def go_next(self) -> None:
        """On to the next step, the checks passed (a step may first ask the user something)."""
        self.app.goto(self.STEP + 1)

    def action_back(self, step: int | None = None) -> None:
        """Back to the step before, or to an earlier ``step`` (the palette's); a step overrides it for its checks."""
        self.app.goto(self.STEP - 1 if step is None else step)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "nav-next":
            event.stop()
            self.action_next()
        elif event.button.id == "nav-back":
            event.stop()
            self.action_back()

    def on_work_failed(self, message: WorkFailed) -> None:
        # Textual runs this after a step's own on_work_failed (it calls each class's handler along the MRO),
        # so a step never calls it itself: that would notify twice.
        self.notify(message.message, title=f"{message.what} failed", severity="error", timeout=10)
