"""Caption review: image list, preview, caption editor, bulk tag edits with undo, auto-caption."""

from __future__ import annotations

from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import Screen
from textual.widgets import Button, Input, OptionList, ProgressBar, Static, TextArea

from dbtui.cli.printable import printable
from dbtui.engine_facade import Engine
from dbtui.messages import EngineEvent, WorkDone, WorkFailed
from dbtui.screens.caption_edits import CaptionEdits
from dbtui.screens.caption_leaving import ask_caption_mode, forget_findings, reads_no_captions
from dbtui.screens.caption_jobs import AUTO, JOB_TITLES, READING, REREADING, Job, run_caption_job, tag_job
from dbtui.screens.caption_rows import CaptionRows, already_holds, read_caption_row, row_status, shared_note
from dbtui.screens.caption_said import autocaption_said, changes_said, not_saved_said
from dbtui.screens.user_errors import notify_user_errors
from dbtui.session import Session
from dbtui.widgets.caption_bulk import CaptionBulk
from dbtui.widgets.caption_list import CaptionList
from dbtui.widgets.key_footer import KeyFooter
from dbtui.widgets.ordered_keys import OrderedTextArea
from dbtui.widgets.preview import ImagePreview
from engine.errors import DbtuiError
from engine.events import PhaseProgress, PhaseStarted

NO_IMAGES = ("This folder holds no images: put the pictures to train on in it (.jpg, .png, .webp…), or choose "
             "another folder on the Dataset step (Esc).")
_FILL_BATCH = 200  # rows added to the list between two redraws: each takes a fraction of a millisecond to lay out


class CaptionScreen(Screen[None]):
    HELP = """\
## Captions

One caption per image, in a text file beside it (`zwx_01.txt` for `zwx_01.png`). Pick an
image on the left, edit its caption, **^s** saves it. A caption file other images share (a.jpg and
a.png both read a.txt, or b.txt is a link to a.txt) says so: saving it changes theirs too. A bulk edit adds or removes a tag in
every caption at once (in any letter case; a sentence that says the tag is left whole and
named), and Add tag gives each image without a caption one of the tag (Enter in the tag field is Add tag);
**^r** undoes the last one. **F2** puts back the version of this caption that the last save replaced, byte for byte.
Auto-caption writes captions for the images that have none (it needs the captioning model).
The first version of each caption that dbtui replaced is kept in
`.dbtui-captions-history/.originals/` in the images folder.

Watch out: training reads these files only when the concept's `caption_mode` says so
(`caption_file` and the like); by default every image gets the instance prompt, so leaving
this screen after an edit asks which to use. Keep the identifier (e.g. zwx) in each caption.
"""
    CSS_PATH = "captions.tcss"
    # Below 18 rows the preview gives its room to the editor (captions.tcss).
    VERTICAL_BREAKPOINTS = [(0, "-short"), (18, "-tall")]
    BINDINGS = [
        Binding("ctrl+s", "save", "Save caption", priority=True),
        Binding("ctrl+r", "undo", "Undo bulk edit"),
        Binding("f2", "revert", "Revert caption", show=False),  # in F1 help and the palette: the footer is full
        Binding("escape", "close", "Back"),
    ]

    def __init__(self, session: Session, engine: Engine, folder: str, concept: int | None = None) -> None:
        super().__init__()
        self.session = session
        self.engine = engine
        self.folder = folder
        self.concept = concept  # the concept whose images these are, as the dataset step knows it
        self.store = engine.caption_store(folder, session.get("dataset.caption_extension") or ".txt")
        self.images = self.store.images()  # a folder that cannot be listed is refused here, before the screen shows
        self.rows = CaptionRows(self.store.caption_file)
        self.image: Path | None = None
        self.shown = ""  # the caption as loaded into the editor: what a change is measured against
        self.unsaved: str | None = None  # a text whose save failed: moving on (or Esc) again goes without it
        self.edits = CaptionEdits()  # a caption changed here: training may have to be told to use them
        self.job: str | None = None  # the caption job running in a worker (a bulk edit, its undo, auto-caption)

    def compose(self) -> ComposeResult:
        yield Static(f"Captions in {self.folder}", classes="title", markup=False)
        with Horizontal(id="cap-main"):
            yield CaptionList()
            with Vertical(id="cap-edit"):
                yield ImagePreview(id="cap-preview")
                yield OrderedTextArea(id="cap-text", soft_wrap=True)
                yield Static("", id="cap-status", classes="help")
        yield CaptionBulk()
        yield Static("", id="cap-tags", classes="help")
        yield ProgressBar(id="cap-progress", show_eta=False)
        yield KeyFooter()

    def on_mount(self) -> None:
        # Each caption read once (the tag counts with it), in a worker: 3,000 of them on a slow disk froze the screen
        # for seconds. Until the list fills, every action waits for it (``_waiting``) but Esc.
        self._start(READING, "read", lambda emit: None)
        self.query_one("#cap-images", OptionList).focus()

    def _loaded(self, rows: CaptionRows) -> None:
        self.rows = rows
        self._fill(0)

    def _fill(self, start: int) -> None:
        """Add the next ``_FILL_BATCH`` rows to the list, the rest after the screen has drawn them: 3,000 added at
        once held the event loop while each was laid out, no key or redraw meanwhile. The job ends with the last."""
        images = self.query_one(CaptionList)
        end = start + _FILL_BATCH
        images.add_rows(self.rows, self.images[start:end])
        if end < len(self.images):
            self.query_one("#cap-progress", ProgressBar).update(total=len(self.images), progress=end)
            self.call_after_refresh(self._fill, end)
            return
        # The shown image's status replaces "Reading…"; with no image, the list and the editor would say nothing of why.
        self.query_one("#cap-status", Static).update("" if images.option_count else NO_IMAGES)
        self._job_ended(self.rows)
        if images.option_count and images.highlighted is None:  # where the user moved to during the fill stays
            images.highlighted = 0

    # -- one caption ----------------------------------------------------------------------
    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        image = Path(event.option.id or "")
        if image == self.image:
            return  # the highlight came back to the image shown (a failed save keeps it): keep its text and status
        if not self._keep_edit():
            self._highlight(self.image)  # its typed text could not be saved: stay on it, text and all
            return
        self.image = image
        self._show(image)

    def _show(self, image: Path) -> None:
        self.query_one(ImagePreview).show(image)
        self._show_caption(image)

    def _show_caption(self, image: Path, note: str = "") -> None:
        """Show the caption of ``image`` read afresh (a file changed outside dbtui shows as it is now)."""
        text, problem = read_caption_row(self.store, image)
        self._set_row(image, text, problem)
        self.shown = text
        self.query_one("#cap-text", TextArea).text = text
        status = shared_note(self.rows.shared_with(image)) + row_status(problem)
        self.query_one("#cap-status", Static).update(Content(f"{note} ") + status if note else status)

    def _keep_edit(self) -> bool:
        """Leaving an image (or the screen) with its caption changed saves it: the previous version stays (F2).

        False when that save failed: the caller stays, so the typed text is not lost. The same text a second time
        goes without it, as the failure said; else a folder nobody can write would hold the user here.
        """
        if self.image is None:
            return True
        typed = self.query_one("#cap-text", TextArea).text
        if typed in (self.shown, self.unsaved):
            self.unsaved = None
            return True
        return self._save()

    def action_save(self) -> None:
        if not self._waiting(for_auto=False):
            self._save()

    def _save(self) -> bool:
        """Save the editor's caption; False when it cannot be, with the text kept in the editor and the reason said."""
        if self.image is None:
            return True
        typed = self.query_one("#cap-text", TextArea).text
        text = " ".join(typed.split())
        try:
            if not already_holds(self.store, self.image, text):
                self.edits.before_write(self.rows.file_of(self.image))
                self.store.write(self.image, text)
        except DbtuiError as error:
            self.unsaved = typed
            status, said = not_saved_said(str(error))
            self.query_one("#cap-status", Static).update(status)
            self.notify(said, title="Caption not saved", severity="error", timeout=10)
            return False
        self.unsaved = None
        self.shown = typed
        self._set_row(self.image, text)
        name = printable(self.rows.file_of(self.image).name)
        shared = shared_note(self.rows.shared_with(self.image))
        self.query_one("#cap-status", Static).update(shared + Content(f"Saved {name}."))
        self.notify(f"Saved {name}.")
        return True

    @notify_user_errors("Caption not reverted")
    def action_revert(self) -> None:
        """Swap this caption with the version the last save replaced (F2 again: the newer one)."""
        if self.image is None or self._waiting(for_auto=False) or not self._keep_edit():
            return  # typing not yet saved is saved first, so that F2 again brings it back
        self.edits.before_write(self.rows.file_of(self.image))
        if not self.store.revert(self.image):
            self.notify("This caption has no earlier version.", severity="warning")
            return
        self._show_caption(self.image, "Reverted to the earlier version (F2 again: the newer one).")
        self.notify(f"Reverted {printable(self.rows.file_of(self.image).name)} to its earlier version.")  # plain text (app.py)

    def _set_row(self, image: Path, text: str, problem: str = "") -> None:
        """The rows of this caption file (a.jpg and a.png share a.txt) and the tag counts brought up to date,
        without reading the other captions."""
        if self.query_one(CaptionList).set_caption(self.images, self.rows, image, text, problem):
            self._show_tags()

    def _highlight(self, image: Path | None) -> None:
        if image is not None:
            self.query_one("#cap-images", OptionList).highlighted = self.images.index(image)

    def _show_tags(self) -> None:
        tags = self.rows.top_tags(8)
        self.query_one("#cap-tags", Static).update(
            Content("Tags: " + ", ".join(f"{t} ×{n}" for t, n in tags) if tags else "No tags yet."))

    # -- jobs over every caption, in a worker ------------------------------------------------
    @on(Button.Pressed, "#cap-add")
    @on(Input.Submitted, "#cap-tag")
    def _add(self) -> None:
        self._bulk("add")

    @on(Button.Pressed, "#cap-remove")
    def _remove(self) -> None:
        self._bulk("remove")

    def _bulk(self, operation: str) -> None:
        tag = self.query_one("#cap-tag", Input).value.strip()
        if not tag:
            self.notify("Type a tag first.", severity="warning")
            return
        if self._waiting(for_auto=True) or not self._keep_edit():  # the bulk edit reloads the editor
            return
        self._start(*tag_job(self.store, operation, tag))

    @on(Button.Pressed, "#cap-undo")
    def action_undo(self) -> None:
        if not self._waiting(for_auto=True) and self._keep_edit():
            self._start("undoing the last bulk edit", "undo", lambda emit: self.store.undo(emit=emit))

    @on(Button.Pressed, "#cap-auto")
    def _auto(self) -> None:
        if self._waiting(for_auto=True) or not self._keep_edit():
            return
        self.notify("Auto-captioning the images without a caption…")
        self._start(AUTO, "autocaption", lambda emit: self.engine.autocaption(
            self.folder, self.session.get("dataset.caption_extension") or ".txt", emit=emit))

    def _start(self, job: str, what: str, run: Job) -> None:
        """Run ``run`` in a worker with its progress shown; a bulk edit or an undo locks the editor meanwhile."""
        self.job = job
        self.query_one("#cap-text", TextArea).read_only = job != AUTO
        self.query_one("#cap-tags").display = False
        bar = self.query_one("#cap-progress", ProgressBar)
        bar.update(total=None, progress=0)
        bar.display = True
        self.query_one("#cap-status", Static).update(Content(f"{job[:1].upper() + job[1:]}…"))
        self._run_job(what, run)

    @work(thread=True, exclusive=True, exit_on_error=False, group="caption-job")
    def _run_job(self, what: str, run: Job) -> None:
        run_caption_job(what, run, self.store, self.images, self.rows, self.edits, self.post_message)

    def _waiting(self, *, for_auto: bool) -> bool:
        """True, and said, when a caption job runs that this action must wait for (auto-caption: only if ``for_auto``)."""
        if self.job is None or (self.job == AUTO and not for_auto):
            return False
        self.notify(f"Wait until {self.job} has finished.", severity="warning")
        return True

    def on_engine_event(self, message: EngineEvent) -> None:
        event = message.event
        if isinstance(event, (PhaseStarted, PhaseProgress)):
            self.query_one("#cap-progress", ProgressBar).update(
                total=event.total, progress=event.done if isinstance(event, PhaseProgress) else 0)

    def on_work_done(self, message: WorkDone) -> None:
        if message.what not in JOB_TITLES:
            return  # another widget's worker (the preview's)
        result, fresh = message.result
        if message.what == "read":
            self._loaded(fresh)
            return
        if message.what == "reread":
            self._job_ended(fresh)
            return
        if message.what == "autocaption":
            self.edits.by_job(bool(result.written))
            self._tell(autocaption_said(result))
        else:  # a bulk edit's captions were kept as found (_run_job): undone, they changed nothing
            self._tell(changes_said(result, "(Ctrl+R undoes)" if message.what == "bulk" else ""))
        self._job_ended(fresh)

    def on_work_failed(self, message: WorkFailed) -> None:
        self.notify(message.message, title=JOB_TITLES.get(message.what, f"{message.what} failed"), severity="error",
                    timeout=10)
        if message.what == "read":  # each row says why, and showing one reads it again
            self._loaded(CaptionRows.unread(self.store.caption_file, self.images, message.message))
        elif message.what == "reread":  # the rows as they were: showing one reads it again
            self._job_ended(self.rows)
        elif message.what in JOB_TITLES:  # a bulk edit may have stopped half-way; in a worker, as on mount
            self._start(REREADING, "reread", lambda emit: None)

    def _tell(self, said: tuple[str, bool]) -> None:
        text, warn = said
        self.notify(text, severity="warning" if warn else "information", timeout=10 if warn else 5)

    def _job_ended(self, fresh: CaptionRows) -> None:
        """Every row whose caption the job changed, and the editor where the user has not typed since it showed."""
        self.job = None
        self.query_one("#cap-text", TextArea).read_only = False
        self.query_one("#cap-progress").display = False
        self.query_one("#cap-tags").display = True
        self.query_one(CaptionList).relabel(self.images, self.rows, fresh)
        self.rows = fresh
        self._show_tags()
        if self.image is None:
            return
        if self.query_one("#cap-text", TextArea).text == self.shown:
            self._show_caption(self.image)
            return
        self.shown = self.rows.get(self.image)[0]  # leaving saves the typing over it; F2 then brings it back
        self.query_one("#cap-status", Static).update(
            "Your typing is kept: Ctrl+S saves it over this caption's new text (F2 then brings that back).")

    # -- leaving ---------------------------------------------------------------------------
    def action_close(self) -> None:
        if self.job == READING:  # nothing shown yet, so nothing to keep; the worker's rows go with the screen
            self.dismiss(None)
            return
        if self._waiting(for_auto=False) or not self._keep_edit():
            return
        edited = self.edits.changed()  # a save put back with F2, a bulk edit undone: nothing changed
        if edited or self.job == AUTO:
            forget_findings(self.session, self.folder, self.concept)
        if edited and self.concept is not None and reads_no_captions(self.session, self.concept):
            ask_caption_mode(self, self.session, self.concept)
            return
        self.dismiss(None)
