"""Step 3: concepts, the dataset doctor's findings, preparing, and the way to caption review."""

from __future__ import annotations

from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.content import Content
from textual.widgets import Button, Input, Label, ProgressBar, Select, Static

from dbtui.messages import WorkDone
from dbtui.pasted_path import pasted_path
from dbtui.screens.base import WizardScreen
from dbtui.screens.dataset_caption_use import CaptionUse
from dbtui.screens.dataset_check import CheckJob
from dbtui.screens.dataset_advice import concept_name, errors_advice, no_identifier_said, tokens_said
from dbtui.screens.dataset_jobs import PROGRESS_LABELS, Job, JobEvent
from dbtui.screens.dataset_prepare import PrepareJob
from dbtui.screens.user_errors import notify_user_errors
from dbtui.widgets.class_count import ClassCount
from dbtui.widgets.findings import FindingsView
from dbtui.widgets.ordered_keys import OrderedInput
from dbtui.widgets.preview import ImagePreview
from dbtui.widgets.step_body import StepBody
from engine.events import PhaseProgress, PhaseStarted
from engine.profile.identifier import guess_identifier

FIELDS = [
    ("instance_dir", "Images folder", "folder with 5–20 pictures of your subject"),
    ("instance_prompt", "Instance prompt", "e.g. photo of zwx dog: 'zwx' is the identifier"),
    ("class_prompt", "Class prompt", "e.g. photo of a dog (prior preservation, in Parameters)"),
    ("class_negative_prompt", "Class negative", "e.g. blurry: class images avoid it (not for Flux)"),
    ("class_dir", "Class folder", "folder of (or for generated) class images"),
]
FOLDER_FIELDS = {"instance_dir", "class_dir"}  # read as pasted paths: quoted, escaped or file:// (dbtui/pasted_path.py)


class DatasetScreen(CaptionUse, CheckJob, PrepareJob, WizardScreen):
    STEP = 2
    CSS_PATH = "dataset.tcss"
    BINDINGS = [Binding("ctrl+r", "check", "Check"), Binding("ctrl+o", "captions", "Captions")]
    HELP = """\
## Step 3 of 5: Dataset

The pictures of your subject and the prompts that name it. A concept is an images folder
plus an instance prompt with a rare identifier ("photo of zwx dog"); add a concept per
subject.

To do: set the images folder and the instance prompt. Prior preservation (switched on in
Parameters; it applies to every concept) also needs a class prompt ("photo of a dog"), a
class folder and **Class images**, how many of them each concept trains with (empty: the
number shown greyed; the run generates those the folder lacks, and Check counts them); while
it is off they are not used. **Check** (^r) runs the dataset doctor: each image's problems,
with a preview. **Prepare** writes fixed copies beside the folder.
**Captions** (^o) reviews the caption files.

Watch out: 5 to 20 sharp, varied pictures work best. The identifier should be one token:
the line under the prompts says. Your original images are never changed.
"""

    def __init__(self, session, engine) -> None:
        super().__init__(session, engine)
        self.concept = 0
        self.errors_accepted = False  # the user was told of the check's errors and chose to go on
        self.failed_check: str | None = None  # why the last check of this concept could not run
        self.shown: dict | None = None  # the concept (the draft's own) that failed_check and errors_accepted are of
        self.checks = 0  # checks started: a check's result comes back with its number, and only the last one's counts
        self.checking: Job | None = None
        self.check_failed: set[int] = set()  # concepts whose last check failed: Next does not check them again (a loop)
        self.preparing = None
        self.leave_said = False

    def compose_body(self) -> ComposeResult:
        with StepBody():
            with Horizontal(id="ds-concepts"):
                yield Select(self._concept_options(), value=0, allow_blank=False, compact=True, id="ds-concept")
                yield Button("Add", id="ds-add", compact=True)
                yield Button("Remove", id="ds-remove", compact=True)
            for key, label, placeholder in FIELDS:
                with Horizontal(classes="ds-field"):
                    yield Label(label)
                    yield OrderedInput(placeholder=placeholder, id=f"ds-{key}", compact=True)
            yield ClassCount(self.session)
            yield Static("", id="ds-tokens")
            yield from self.compose_caption_use()
            with Horizontal(id="ds-actions"):
                yield Button("Check", id="ds-check", variant="primary", compact=True)
                yield Button("Prepare", id="ds-prepare", compact=True)
                yield Button("Captions…", id="ds-captions", compact=True)
            with Horizontal(id="ds-progress"):  # a row of its own: two bars beside the buttons left no room at 80
                for job, label in PROGRESS_LABELS.items():
                    yield Label(label, id=f"ds-{job}-progress-label")
                    yield ProgressBar(id=f"ds-{job}-progress", show_eta=False)
            with Horizontal(id="ds-results"):
                yield FindingsView(id="ds-findings")
                yield ImagePreview(id="ds-preview")

    def _concept_options(self) -> list[tuple[str, int]]:
        concepts = self.session.get("concepts") or []
        return [(concept_name(i, c.get("instance_dir")), i) for i, c in enumerate(concepts)]

    def on_mount(self) -> None:
        self._show_progress()  # none: each is shown while its job runs
        self._load_concept()
        self.query_one("#ds-instance_dir").focus()

    def _load_concept(self) -> None:
        """Show concept ``self.concept``; when it is another concept than before (chosen, added, or moved up by a
        Remove), the failed check and the errors accepted were the other's: Next must not report them."""
        concept = self.session.get(f"concepts.{self.concept}")
        if concept is not self.shown:  # by identity: an index stays when a Remove moves the next concept up
            self.shown = concept
            self.failed_check = None
            self.errors_accepted = False
        for key, _, _ in FIELDS:
            self.query_one(f"#ds-{key}", Input).value = self.session.get(f"concepts.{self.concept}.{key}") or ""
        self.query_one(ClassCount).show(self.concept)
        self._show_findings("changed since the last check: ctrl+r checks again")
        self._token_check()
        self.show_caption_use()

    def _show_findings(self, stale: str) -> None:
        """The concept's findings; where its report was dropped since its check, ``stale`` says they are not current."""
        view = self.query_one(FindingsView)
        report = self.session.reports.get(self.concept)
        if report is not None:
            view.show(report)
        else:
            view.clear(f"[yellow]{stale}[/]" if self._last_check() is not None else "not checked yet")

    def _last_check(self, index: int | None = None):
        """The report of the last check of concept ``index`` (the one shown by default) while its folder is the one
        checked, kept even once dropped."""
        index = self.concept if index is None else index
        folder, report = self.session.checked.get(index, (None, None))
        return report if folder == self.session.get(f"concepts.{index}.instance_dir") else None

    def on_screen_resume(self) -> None:
        # Back from caption review, which drops the reports of the captions it changed: not shown as current.
        self.show_caption_use()  # and may have written captions, or switched the caption mode
        self.query_one(ClassCount).show_counts()
        view = self.query_one(FindingsView)
        if view.report is not None and self.session.reports.get(self.concept) is not view.report:
            self.errors_accepted = False  # the errors accepted were those of the findings dropped
            self._show_findings("captions changed since the check: ctrl+r checks again")

    # -- editing concepts ---------------------------------------------------------------
    @on(Input.Changed)
    def _field_changed(self, event: Input.Changed) -> None:
        key = (event.input.id or "").removeprefix("ds-")
        if key not in {k for k, _, _ in FIELDS}:
            return
        concept = self.session.get(f"concepts.{self.concept}")
        typed = event.value.strip()
        if typed == (concept.get(key) or ""):
            return  # the field filled from the session (a concept shown): nothing changed, nothing to unwrap
        value = pasted_path(typed) if key in FOLDER_FIELDS else typed
        if value == (concept.get(key) or ""):
            return
        if value:
            concept[key] = value
        elif key in ("class_dir", "class_prompt", "class_negative_prompt"):
            concept.pop(key, None)
        else:
            concept[key] = ""
        self._changed()
        if key in ("instance_prompt", "class_prompt"):
            self._token_check()
        if key == "instance_dir":  # the selector names each concept by its folder
            self._relabel_concepts()
            self.show_caption_use()

    def on_class_count_edited(self) -> None:
        self._changed()

    def _changed(self) -> None:
        """The concept shown was edited: its check's findings, errors accepted, failure and class counts are of what it
        was."""
        if self.session.reports.pop(self.concept, None) is not None:
            self.query_one(FindingsView).clear("not checked since the change (ctrl+r checks)")
            self.query_one(ClassCount).show_counts()
        self.errors_accepted = False
        self.failed_check = None

    def _relabel_concepts(self) -> None:
        select = self.query_one("#ds-concept", Select)
        with select.prevent(Select.Changed):  # set_options picks the first concept on the way: not a choice
            select.set_options(self._concept_options())
            select.value = self.concept
            select.mutate_reactive(Select.value)  # the first concept's new label: no value changed, so none was shown

    def _identifier(self) -> str | None:
        return guess_identifier(self.session.get(f"concepts.{self.concept}.instance_prompt") or "",
                                self.session.get(f"concepts.{self.concept}.class_prompt"))

    def _token_check(self) -> None:
        identifier = self._identifier()
        line = self.query_one("#ds-tokens", Static)
        if identifier is None:
            line.update(no_identifier_said(self.session.get(f"concepts.{self.concept}") or {}))
            return
        line.update(Content(f"Identifier '{identifier}': checking its tokens…"))
        self.tokens(self.session.get("model.pretrained") or "", identifier)

    @work(thread=True, exclusive=True, exit_on_error=False, group="tokens")
    def tokens(self, model: str, identifier: str) -> None:
        try:
            self.post_message(WorkDone("tokens", (identifier, self.engine.identifier_tokens(model, identifier))))
        except Exception as error:  # noqa: BLE001 - the check is advice; say why it is missing
            self.post_message(WorkDone("tokens", (identifier, str(error))))

    def _show_tokens(self, identifier: str, tokens: list[str] | str | None) -> None:
        self.query_one("#ds-tokens", Static).update(tokens_said(identifier, tokens))

    @on(Select.Changed, "#ds-concept")
    def _concept_chosen(self, event: Select.Changed) -> None:
        if isinstance(event.value, int) and event.value != self.concept:
            self.concept = event.value
            self._load_concept()

    def _refresh_concepts(self) -> None:
        self._relabel_concepts()  # unannounced: the first concept, picked on the way, would take the fields' changes
        self._load_concept()

    @on(Button.Pressed, "#ds-add")
    def action_add_concept(self) -> None:
        concepts = self.session.get("concepts")
        concepts.append({"instance_dir": "", "instance_prompt": ""})
        self.concept = len(concepts) - 1
        self._refresh_concepts()

    @on(Button.Pressed, "#ds-remove")
    def action_remove_concept(self) -> None:
        concepts = self.session.get("concepts")
        if len(concepts) <= 1:
            self.notify("A profile needs at least one concept.", severity="warning")
            return
        removed = self.concept
        concepts.pop(removed)
        # The other concepts keep their checks, under their new numbers (a running job finds its concept by identity).
        for by_concept in (self.session.reports, self.session.checked, self.session.left_out):
            kept = {index - (index > removed): value for index, value in by_concept.items() if index != removed}
            by_concept.clear()
            by_concept.update(kept)
        self.check_failed = {index - (index > removed) for index in self.check_failed if index != removed}
        self.concept = min(self.concept, len(concepts) - 1)
        self._refresh_concepts()

    # -- the doctor ---------------------------------------------------------------------
    @on(Button.Pressed, "#ds-check")
    def action_check(self) -> None:
        self._start_check(self.concept)

    @on(Button.Pressed, "#ds-prepare")
    def _prepare_pressed(self) -> None:
        self.action_prepare()

    def on_job_event(self, message: JobEvent) -> None:
        bar = self.query_one(f"#ds-{message.job}-progress", ProgressBar)
        if isinstance(message.event, PhaseStarted):
            bar.update(total=message.event.total, progress=0)
        elif isinstance(message.event, PhaseProgress):
            bar.update(total=message.event.total, progress=message.event.done)

    def on_work_done(self, message: WorkDone) -> None:
        if message.what == "tokens":
            identifier, tokens = message.result
            if identifier == self._identifier():  # else the result of a concept or prompt since replaced
                self._show_tokens(identifier, tokens)
        elif message.what == "check":
            self._checked(*message.result)
        elif message.what == "prepare":
            self._prepare_done(*message.result)

    def _show_progress(self) -> None:
        for job, running in (("check", self.checking), ("prepare", self.preparing)):
            self.query_one(f"#ds-{job}-progress-label").display = running is not None
            bar = self.query_one(f"#ds-{job}-progress", ProgressBar)
            if running is not None and not bar.display:  # a new job: not the last one's end
                bar.update(total=None, progress=0)
            bar.display = running is not None
        self.query_one("#ds-progress").display = self.checking is not None or self.preparing is not None

    def on_findings_view_highlighted(self, message: FindingsView.Highlighted) -> None:
        self.query_one(ImagePreview).show(message.path)

    @on(Button.Pressed, "#ds-caption-mode")
    def _caption_mode_pressed(self) -> None:
        self.choose_caption_mode()

    @on(Button.Pressed, "#ds-captions")
    @notify_user_errors("Captions not opened")
    def action_captions(self) -> None:
        from dbtui.screens.captions import CaptionScreen
        from engine.profile.fields import expanded_path

        folder = self.session.get(f"concepts.{self.concept}.instance_dir")
        if self.preparing is not None and self.preparing.folder == folder:  # copies that an edit here would miss
            self.notify(f"{self._still_preparing()} Then review the captions of the copies.", severity="warning")
            return
        if not folder:
            self.notify("Choose the images folder first.", severity="warning")
            return
        try:
            folder = expanded_path(folder)  # "~/pics" as the profile reads it
        except ValueError as error:
            self.notify(f"The images folder {error}.", title="Captions not opened", severity="error", timeout=10)
            return
        self.app.push_screen(CaptionScreen(self.session, self.engine, folder, self.concept))

    def action_back(self, step: int | None = None) -> None:
        problem = self._preparing_problem()
        if problem:
            self.notify(problem, severity="warning", title="Not yet")
            return
        super().action_back(step)

    def _named(self, index: int) -> str:
        """How a message names concept ``index``: the one shown, or another by its number and folder."""
        if index == self.concept:
            return "this concept"
        return f"concept {index + 1} ({Path(self.session.get(f'concepts.{index}.instance_dir') or '?').name})"

    def leave_problem(self) -> str | None:
        problem = self._preparing_problem()
        if problem:
            return problem
        if self.failed_check is not None and not self.errors_accepted:
            self.errors_accepted = True  # said once: the folder may be meant for another machine
            return f"The check failed: {self.failed_check}. Fix the folder, or Next again goes on anyway."
        # Every concept, the one shown first: Parameters and the run read them all.
        indices = sorted(range(len(self.session.get("concepts") or [])), key=lambda index: index != self.concept)
        with_errors = []
        for index in indices:
            report, last, named = self.session.reports.get(index), self._last_check(index), self._named(index)
            # Once told of a failed re-check, Next goes on as promised: checking again would loop.
            told = index in self.check_failed or (index == self.concept and self.errors_accepted)
            if report is None and last is not None and not told and (
                    last.summary.usable == 0 or last.summary.counts.get("error", 0)):
                return self._check_again(index, last)  # dropped (captions changed): what it found may be mended
            if report is not None and report.summary.usable == 0:
                shown = "" if index == self.concept else " (choose it above)"
                return f"No usable images in {named}: fix the errors the check shows{shown}."
            if report is not None and report.summary.counts.get("error", 0):
                with_errors.append(f"{report.summary.counts['error']} error(s) in {named}: {errors_advice(report)}")
        if with_errors and not self.errors_accepted:
            self.errors_accepted = True  # said once: Next again goes on
            return "; ".join(with_errors) + "; Next again goes on anyway."
        for index, concept in enumerate(self.session.get("concepts") or []):
            if not concept.get("instance_dir"):
                return f"Concept {index + 1} has no images folder."
        return None
