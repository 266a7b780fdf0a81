"""The dataset step's Check: started for a concept (by Ctrl+R, or by Next for one whose dropped report found errors),
its report filed under that concept when it comes back, and a check replaced by a later one ignored."""

from __future__ import annotations

from textual import work
from textual.content import Content

from dbtui.messages import WorkDone
from dbtui.screens.dataset_advice import problems_said
from dbtui.screens.dataset_jobs import Job, JobEvent
from dbtui.widgets.class_count import ClassCount
from dbtui.widgets.findings import FindingsView
from engine.profile import ProfileError


class CheckJob:
    """The dataset step's Check job, for DatasetScreen: it gives the concept shown (``concept``), ``_named``,
    ``_show_progress`` and ``_with_left_out``, and sets ``checks`` to 0, ``checking`` and ``failed_check`` to None and
    ``check_failed`` to an empty set."""

    checks: int  # checks started: a check's result comes back with its number, and only the last one's counts
    checking: Job | None
    check_failed: set[int]  # concepts whose last check failed: Next does not check them again (a loop)
    failed_check: str | None  # why the last check of the concept shown could not run

    def _start_check(self, index: int) -> bool:
        """Check concept ``index``; False when the draft does not validate (the problems are shown instead)."""
        try:
            profile = self.session.profile()
        except ProfileError as error:
            self.notify(problems_said(error.problems, index), title="Fix these first", severity="error")
            return False
        self.checks += 1
        self.checking = Job.of(self.session, index, self.checks)
        self._show_progress()
        self.check(profile, index, self.checking)
        return True

    @work(thread=True, exclusive=True, exit_on_error=False, group="check")
    def check(self, profile, concept: int, job: Job) -> None:
        try:
            outcome = self.engine.check_dataset(profile, concept, emit=lambda e: self.post_message(JobEvent(e, "check")))
        except Exception as error:  # noqa: BLE001 - shown to the user
            outcome = str(error)
        self.post_message(WorkDone("check", (job, outcome)))

    def _checked(self, job: Job, outcome) -> None:
        """A check's report, or why it failed, filed under the concept checked while it still has the folder checked;
        a check replaced by a later one (its worker cancelled, its thread not stopped) says nothing."""
        if job.number != self.checks:
            return
        self.checking = None
        self._show_progress()
        concept = job.index_in(self.session)
        if concept is None:  # removed, or given another folder: the findings shown say so already
            return
        if isinstance(outcome, str):
            of = "" if concept == self.concept else f" of {self._named(concept)}"  # Next's re-check of another
            self.notify(outcome, title=f"Dataset check{of} failed", severity="error", timeout=10)
            self.check_failed.add(concept)
            if concept == self.concept:
                # Lasting, not only a notification: the findings of another folder must not stay as if they were these.
                self.query_one(FindingsView).clear(Content.from_markup("[red]check failed:[/] $outcome", outcome=outcome))
                self.failed_check = outcome
            return
        report = self._with_left_out(concept, outcome)
        self.check_failed.discard(concept)
        self.session.reports[concept] = report
        self.session.checked[concept] = (job.folder, report)
        if concept == self.concept:
            self.failed_check = None
            view = self.query_one(FindingsView)
            view.show(report)
            self.query_one(ClassCount).show_counts()
            if report.findings:
                # At 80x24 the step's fields fill the screen: the findings came in below it, where only their summary
                # line showed and the list looked empty. Brought into view once laid out (the summary may wrap).
                self.call_after_refresh(view.scroll_visible, animate=False)

    def _check_again(self, index: int, last) -> str:
        """Next's check of concept ``index`` again, whose ``last`` check found errors: what Next says of it. A check
        under way is waited for, not replaced (a new one cancels it: Next pressed again and again would finish none)."""
        running = self.checking.index_in(self.session) if self.checking is not None else None
        if running is not None:
            return f"Still checking {self._named(running)}: Next again once it is done."
        found = "no usable images" if last.summary.usable == 0 else f"{last.summary.counts['error']} error(s)"
        of = "" if index == self.concept else f" of {self._named(index)}"
        if not self._start_check(index):
            return f"The last check{of} found {found} before the last changes; fix the problems shown to check it again."
        return f"The last check{of} found {found} before the last changes: checking again. Next again once it is done."
