"""Train in Parameters while the wizard still follows a run (the user pressed Esc on its dashboard while it trained):
the dashboard follows that run again only when the parameters still name it. Another run starts at once when the
followed one has ended; while it trains the user chooses, since on one GPU two runs share its memory."""

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
        if folder is None:
            super().go_next()
            return
        other = draft_elsewhere(self.session, folder)
        if other is None:
            if draft_differs(self.session, folder):
                self.notify(f"Still following {folder.name}: your changes apply to a new run (give it another name "
                            "here).", title="Same run", severity="warning", timeout=20)
        elif trains(self.engine, folder):
            self.app.push_screen(LiveRunScreen(folder, other), lambda choice: self._chosen(folder, choice))
            return
        else:  # it ended while the user was here: the parameters' run starts
            self.session.run_folder = None
        super().go_next()

    def _chosen(self, live: Path, choice: LiveChoice | None) -> None:
        """The parameters name another run while ``live`` trains: the user's answer (None: stay here)."""
        if choice == "start":
            self.notify(f"{live.name} keeps training in its own process; {goes_on(live)}", title=f"{live.name} goes on",
                        timeout=30)
            self.session.run_folder = None
        if choice is not None:
            super().go_next()
