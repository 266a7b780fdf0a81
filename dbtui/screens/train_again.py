"""Train in Parameters while the wizard still follows a run (the user pressed Esc on its dashboard while it trained):
the dashboard follows that run again only when the parameters still name it and it still trains; once it has ended,
Train does what it does for a fresh draft. While it trains and the parameters name another run, the user chooses,
since on one GPU two runs share its memory."""

from __future__ import annotations

from pathlib import Path

from dbtui.format import goes_on
from dbtui.screens.live_run import LiveChoice, LiveRunScreen
from dbtui.screens.run_life import draft_differs, draft_elsewhere, trains


class TrainAgain:
    """The Parameters step's Train, past its checks: mixed into ParametersScreen ahead of WizardScreen, whose
    ``go_next`` it goes on to."""

    def go_next(self) -> None:
        folder = self.session.run_folder
        if folder is not None and not trains(self.engine, folder):
            # It ended while the user was here: Train does what it does for a fresh draft (a finished run of the
            # same name is not started over, a stopped one is offered to resume), not show the old dashboard.
            self.session.run_folder = folder = None
        if folder is None:
            super().go_next()
            return
        other = draft_elsewhere(self.session, folder)
        if other is not None:
            self.app.push_screen(LiveRunScreen(folder, other), lambda choice: self._chosen(folder, choice))
            return
        if draft_differs(self.session, folder):
            self.notify(f"Still following {folder.name}: your changes apply to a new run (give it another name here).",
                        title="Same run", severity="warning", timeout=20)
        super().go_next()

    def _chosen(self, live: Path, choice: LiveChoice | None) -> None:
        """The parameters name another run while ``live`` trains: the user's answer (None: stay here)."""
        if choice == "start":
            self.notify(f"{live.name} keeps training in its own process; {goes_on(live)}", title=f"{live.name} goes on",
                        timeout=30)
            self.session.run_folder = None
        if choice is not None:
            super().go_next()
