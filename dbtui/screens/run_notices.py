"""The notices the run dashboard raises about the run it follows (its crash, stop or failure, a checkpoint saved, a
start refused): a run started next takes them down, for they tell of the run before. Every other notice (a caption
that could not be saved, say) stays until it times out or is read."""

from __future__ import annotations

from textual.notifications import SeverityLevel

from dbtui.screens.base import WizardScreen


class RunNoticesScreen(WizardScreen):
    """A step whose notices are of a run: the app keeps their (title, message) in ``run_notices`` (app.py), the one
    place that outlives the dashboard, which is made anew each time the wizard reaches it."""

    def notify(self, message: str, *, title: str = "", severity: SeverityLevel = "information",
               timeout: float | None = None, markup: bool = True) -> None:
        self.app.run_notices.add((title, message))
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=markup)

    def take_down_run_notices(self) -> None:
        """Take down the notices showing of an earlier run, leaving the others."""
        app = self.app
        try:  # Textual has no public way to take down one notice
            for notification in [n for n in app._notifications if (n.title, n.message) in app.run_notices]:
                app._unnotify(notification, refresh=False)
            app._refresh_notifications()
        except AttributeError:  # a Textual whose private names moved: every notice goes, rather than the wizard
            app.clear_notifications()
        app.run_notices.clear()
