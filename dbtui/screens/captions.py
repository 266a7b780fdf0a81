"""Caption review: image list, preview, caption editor, bulk tag edits with undo, auto-caption."""

from __future__ import annotations

from pathlib import Path

from rich.markup import escape
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Button, Input, OptionList, Static, TextArea
from textual.widgets.option_list import Option

from dbtui.engine_facade import Engine
from engine.dataset.errors import CaptionError
from dbtui.messages import WorkDone, WorkFailed
from dbtui.screens.user_errors import notify_user_errors
from dbtui.session import Session
from dbtui.widgets.key_footer import KeyFooter
from dbtui.widgets.ordered_keys import OrderedInput, OrderedTextArea
from dbtui.widgets.preview import ImagePreview


class CaptionScreen(Screen[None]):
    HELP = """\
## Captions

One caption per image, in a text file beside it (`zwx_01.txt` for `zwx_01.png`). Pick an
image on the left, edit its caption, **^s** saves it. A bulk edit adds or removes a tag in
every caption at once; **^r** undoes the last one. **F2** puts back the version of this
caption that the last save replaced. Auto-caption writes captions for the images that have
none (it needs the captioning model).

Watch out: training reads these files only when the concept's `caption_mode` says so
(`caption_file` and the like); by default every image gets the instance prompt, so leaving
this screen after an edit asks which to use. Keep the identifier (e.g. zwx) in each caption.
"""
    CSS_PATH = "captions.tcss"
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
        # The concept whose images these are, as the dataset step knows it: its instance_dir may read "~/pics".
        self.concept_key = f"concepts.{concept}" if concept is not None else None
        self.store = engine.caption_store(folder, session.get("dataset.caption_extension") or ".txt")
        self.store.images()  # a folder that cannot be listed is refused here, before the screen shows
        self.image: Path | None = None
        self.shown = ""  # the caption as loaded into the editor: what a change is measured against
        self.edited = False  # any caption changed here: training may have to be told to use them

    def compose(self) -> ComposeResult:
        yield Static(f"Captions in {self.folder}", classes="title", markup=False)
        with Horizontal(id="cap-main"):
            yield OptionList(id="cap-images")
            with Vertical(id="cap-edit"):
                yield ImagePreview(id="cap-preview")
                yield OrderedTextArea(id="cap-text", soft_wrap=True)
                yield Static("", id="cap-status", classes="help")
        with Horizontal(id="cap-bulk"):
            yield OrderedInput(placeholder="tag", id="cap-tag", compact=True)
            yield Button("Add tag", id="cap-add", compact=True)
            yield Button("Remove tag", id="cap-remove", compact=True)
            yield Button("Undo", id="cap-undo", compact=True)
            yield Button("Auto-caption", id="cap-auto", compact=True)
        yield Static("", id="cap-tags", classes="help")
        yield KeyFooter()

    def on_mount(self) -> None:
        self._reload()
        self.query_one("#cap-images").focus()

    def _reload(self) -> None:
        images = self.query_one("#cap-images", OptionList)
        highlighted = images.highlighted
        images.clear_options()
        for path in self.store.images():
            text, problem = self._read(path)
            mark = " [red](unreadable)[/]" if problem else ("" if text else " [dim](none)[/]")
            images.add_option(Option(f"{escape(Path(path).name)}{mark}", id=str(path)))
        if images.option_count:
            images.highlighted = min(highlighted or 0, images.option_count - 1)
        tags = self.store.tag_frequency()[:8]
        self.query_one("#cap-tags", Static).update("Tags: " + ", ".join(f"{escape(t)} ×{n}" for t, n in tags) if tags else "No tags yet.")

    def _read(self, image: Path | str) -> tuple[str, str]:
        """(caption, "") or ("", why it cannot be read): one unreadable file never stops the screen."""
        try:
            return self.store.read(image) or "", ""
        except CaptionError as error:
            return "", str(error)

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        image = Path(event.option.id)
        if image == self.image:
            return  # the list was rebuilt around the same image (after a save): keep its text and status
        self._keep_edit()
        self.image = image
        self.query_one(ImagePreview).show(image)
        text, problem = self._read(image)
        self.shown = text
        self.query_one("#cap-text", TextArea).text = text
        self.query_one("#cap-status", Static).update(
            f"[red]{escape(problem)}[/] Typing a caption and saving writes it as UTF-8; F2 brings the old file back."
            if problem else "Ctrl+S saves this caption.")

    def _keep_edit(self) -> None:
        """Leaving an image (or the screen) with its caption changed saves it: the previous version stays (F2)."""
        if self.image is not None and self.query_one("#cap-text", TextArea).text != self.shown:
            self.action_save()

    @notify_user_errors("Caption not saved")
    def action_save(self) -> None:
        if self.image is None:
            return
        text = " ".join(self.query_one("#cap-text", TextArea).text.split())
        self.store.write(self.image, text)
        self.shown = self.query_one("#cap-text", TextArea).text
        self.edited = True
        self._reload()
        name = self.store.path_for(self.image).name
        self.query_one("#cap-status", Static).update(f"Saved {escape(name)}.")
        self.notify(f"Saved {name}.")

    @notify_user_errors("Bulk edit not done")
    def _bulk(self, operation: str) -> None:
        tag = self.query_one("#cap-tag", Input).value.strip()
        if not tag:
            self.notify("Type a tag first.", severity="warning")
            return
        self._keep_edit()  # the bulk edit reloads the editor
        changes = self.store.add_tag(tag) if operation == "add" else self.store.remove_tag(tag)
        self.edited = self.edited or bool(len(changes))
        self.notify(f"{operation} '{tag}': {len(changes)} caption(s) changed (Ctrl+R undoes)")
        self._after_bulk()

    def _after_bulk(self) -> None:
        self._reload()
        if self.image is not None:
            self.shown = self._read(self.image)[0]
            self.query_one("#cap-text", TextArea).text = self.shown

    @on(Button.Pressed, "#cap-add")
    def _add(self) -> None:
        self._bulk("add")

    @on(Button.Pressed, "#cap-remove")
    def _remove(self) -> None:
        self._bulk("remove")

    @on(Button.Pressed, "#cap-undo")
    @notify_user_errors("Nothing undone")
    def action_undo(self) -> None:
        changes = self.store.undo()
        self.edited = True
        self.notify(f"Undone: {len(changes)} caption(s) restored" if changes else "Nothing to undo.")
        self._after_bulk()

    @on(Button.Pressed, "#cap-auto")
    def _auto(self) -> None:
        self.notify("Auto-captioning the images without a caption…")
        self.autocaption()

    @work(thread=True, exclusive=True, exit_on_error=False)
    def autocaption(self) -> None:
        try:
            count = self.engine.autocaption(self.folder, self.session.get("dataset.caption_extension") or ".txt")
            self.post_message(WorkDone("autocaption", count))
        except Exception as error:  # noqa: BLE001 - shown to the user (e.g. the captioner is not installed)
            self.post_message(WorkFailed("Auto-caption", str(error)))

    @notify_user_errors("Caption not reverted")
    def action_revert(self) -> None:
        """Put back the version of this caption that the last save replaced (F2 again: the newer one)."""
        if self.image is None:
            return
        previous = self.store.previous(self.image)
        if previous is None:
            self.notify("This caption has no earlier version.", severity="warning")
            return
        self.store.write(self.image, previous)
        self.edited = True
        self._after_bulk()
        self.query_one("#cap-status", Static).update("Reverted to the earlier version (F2 again: the newer one).")
        self.notify(f"Reverted {self.store.path_for(self.image).name} to its earlier version.")

    def on_work_done(self, message: WorkDone) -> None:
        self.edited = self.edited or bool(message.result)
        self.notify(f"Auto-captioned {message.result} image(s).")
        self._after_bulk()

    def on_work_failed(self, message: WorkFailed) -> None:
        self.notify(message.message, title=f"{message.what} failed", severity="error", timeout=10)

    def action_close(self) -> None:
        self._keep_edit()
        self.session.reports.clear()  # captions changed: the doctor's findings may be stale
        concept = self.concept_key
        if self.edited and concept and (self.session.get(f"{concept}.caption_mode") or "instance_prompt") == "instance_prompt":
            from dbtui.screens.caption_mode import CaptionModeScreen

            self.app.push_screen(CaptionModeScreen(), lambda mode: self._chosen(concept, mode))
            return
        self.dismiss(None)

    def _chosen(self, concept: str, mode: str | None) -> None:
        if mode:
            self.session.set(f"{concept}.caption_mode", mode)
            self.notify(f"Caption mode: {mode.replace('_', ' ')}")
        self.dismiss(None)
