"""The dataset step's Prepare: started for the concept shown, its result moving that concept to the copies, and the
step kept while it runs (a second Back or Next leaves anyway, the result then dropped)."""

from __future__ import annotations

from textual import work

from dbtui.messages import WorkDone
from dbtui.screens.dataset_advice import problems_said
from dbtui.screens.dataset_jobs import Job, JobEvent, copies_of, prepare_said
from engine.profile import ProfileError


class PrepareJob:
    """The dataset step's Prepare job, for DatasetScreen: it gives the concept shown (``concept``), the pressed
    Prepare button's call of ``action_prepare`` (a mixin's ``@on`` is not seen by Textual), ``_show_progress``,
    ``_refresh_concepts`` and ``_start_check``, and sets ``preparing`` and ``leave_said`` to None and False."""

    preparing: Job | None  # while set, the step is not left: the result moves its concept to the copies
    leave_said: bool  # a Back or Next was refused while Prepare runs, saying that another leaves anyway

    def action_prepare(self) -> None:
        if self.preparing is not None:  # a second one would write the same copies at the same time
            self.notify(self._still_preparing(), severity="warning")
            return
        try:
            profile = self.session.profile()
        except ProfileError as error:
            self.notify(problems_said(error.problems, self.concept), title="Fix these first", severity="error")
            return
        self.preparing = Job.of(self.session, self.concept)
        self.leave_said = False
        self._show_progress()
        self.prepare(profile, self.concept, self.preparing)

    @work(thread=True, exit_on_error=False, group="prepare")
    def prepare(self, profile, concept: int, job: Job) -> None:
        # Said whatever escapes the engine: the step is not left while ``preparing`` is set.
        outcome: object = "Prepare stopped without a result (see the log)"
        try:
            outcome = self.engine.prepare_dataset(profile, concept, emit=lambda e: self.post_message(JobEvent(e, "prepare")))
        except Exception as error:  # noqa: BLE001 - shown to the user
            outcome = str(error)
        finally:
            self.post_message(WorkDone("prepare", (job, outcome)))

    def _still_preparing(self) -> str:
        return (f"Prepare is still making copies of {self.preparing.folder}: wait until it is done, so that the "
                "concept moves to them (the bar shows how far it is).")

    def _preparing_problem(self) -> str | None:
        """Why Back or Next waits for Prepare; said once: a second press leaves (a stalled network share would keep
        the step for good), Prepare's result then dropped and its copies left where they are."""
        job = self.preparing
        if job is None:
            return None
        if not self.leave_said:
            self.leave_said = True
            return f"{self._still_preparing()} Back or Next again leaves anyway, the concept on its own folder."
        self.preparing = None  # its result, should it still come here, is dropped
        self.notify(f"Left while Prepare ran: the concept keeps {job.folder}; the copies made so far stay in "
                    f"{copies_of(job.folder)}.", title="Prepare result dropped", severity="warning", timeout=10)
        return None

    def _prepare_done(self, job: Job, outcome) -> None:
        if job is not self.preparing:  # left meanwhile: said so then
            return
        self.preparing = None
        self.leave_said = False
        self._show_progress()
        if isinstance(outcome, str):
            self.notify(outcome, title="Prepare failed", severity="error", timeout=10)
        else:
            self._prepared(job, outcome)

    def _prepared(self, job: Job, result) -> None:
        """The concept prepared moves to the copies, unless it was removed or given another folder since."""
        from engine.dataset.prepare_findings import left_out_findings
        from engine.profile.fields import written_path

        concept = job.index_in(self.session)
        if concept is None:
            self.notify(f"Prepared copies in {result.destination}, but the concept they were made of was removed or "
                        "given another images folder meanwhile: no concept uses them.", title="Copies not used",
                        severity="warning", timeout=10)
            return
        moved, failed = prepare_said(result)
        if not moved:
            self.notify(f"{failed or 'No image could be prepared'}; the concept still uses its own folder.",
                        title="Nothing prepared", severity="error", timeout=10)
            return
        # The draft holds the profile as written: "a$$b-prepared" put as it is would be read as a$b-prepared.
        folder = written_path(result.destination)
        self.session.left_out[concept] = (folder, left_out_findings(result))
        self.session.set(f"concepts.{concept}.instance_dir", folder)
        self.session.reports.pop(concept, None)  # of the originals
        self.notify(f"Prepared copies in {result.destination}; the profile now uses them." + (f" {failed}." if failed else ""),
                    severity="warning" if failed else "information")
        self._refresh_concepts()
        self._start_check(concept)

    def _with_left_out(self, concept: int, report):
        """The check's report, with what the last Prepare left out when the check was of its copies."""
        from engine.dataset.prepare_findings import with_findings

        folder, findings = self.session.left_out.get(concept, ("", ()))
        if folder != self.session.get(f"concepts.{concept}.instance_dir"):
            return report
        return with_findings(report, findings)
