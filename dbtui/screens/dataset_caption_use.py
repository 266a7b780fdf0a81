"""The dataset step's line on the caption files beside the concept's images: whether training reads them, and where
it does not (the caption mode a new concept starts with), a button to choose that it does."""

from __future__ import annotations

from collections.abc import Iterator

from textual import work
from textual.containers import Horizontal
from textual.content import Content
from textual.widget import Widget
from textual.widgets import Button, Static

from dbtui.screens.caption_mode import MODE_WORDS


def caption_count(folder: str, extension: str) -> tuple[int, int]:
    """(images with a caption file that is not empty, images) in the images folder ``folder`` as the profile names it;
    (0, 0) where it names none that can be listed (being typed, a builtin: name)."""
    from engine.dataset.caption_file_findings import captioned_images
    from engine.dataset.errors import DatasetError
    from engine.dataset.files import list_images
    from engine.profile.fields import expanded_path

    try:
        images = list_images(expanded_path(folder), recursive=False)
    except (OSError, ValueError, DatasetError):
        return 0, 0
    return captioned_images(images, extension), len(images)


class CaptionUse:
    """For DatasetScreen, which gives ``session``, the concept shown (``concept``) and the caption-mode button's press
    (a mixin's ``@on`` is not seen by Textual): ``show_caption_use`` whenever the concept, its folder or its captions
    may have changed."""

    _caption_use_of: tuple[int, str, str] | None = None  # (concept, folder, caption extension) the line shown counts

    def compose_caption_use(self) -> Iterator[Widget]:
        with Horizontal(id="ds-caption-use"):
            yield Static("", id="ds-caption-said")
            yield Button("Use them…", id="ds-caption-mode", compact=True)

    def show_caption_use(self) -> None:
        folder = self.session.get(f"concepts.{self.concept}.instance_dir") or ""
        extension = self.session.get("dataset.caption_extension") or ".txt"
        # Hidden until the folder is counted where it would say another folder's count; the same folder's line stays
        # while it is counted again (back from caption review): hiding it took the focus from its button.
        if (self.concept, folder, extension) != self._caption_use_of:
            self._hide_caption_use()
        if folder:
            self.count_captions(self.concept, folder, extension)

    def _hide_caption_use(self) -> None:
        self.query_one("#ds-caption-use").display = False
        self._caption_use_of = None

    @work(thread=True, exclusive=True, exit_on_error=False, group="caption-use")
    def count_captions(self, concept: int, folder: str, extension: str) -> None:
        captioned, images = caption_count(folder, extension)
        self.app.call_from_thread(self._counted, concept, folder, extension, captioned, images)

    def _counted(self, concept: int, folder: str, extension: str, captioned: int, images: int) -> None:
        if (concept, folder) != (self.concept, self.session.get(f"concepts.{concept}.instance_dir")):
            return  # another concept or folder since
        if not captioned:  # none to say (caption review may have removed them)
            self._hide_caption_use()
            return
        mode = self.session.get(f"concepts.{concept}.caption_mode") or "instance_prompt"
        unused = mode in MODE_WORDS
        if unused:
            said = (f"[yellow]{captioned} of {images} images have a $extension caption that training ignores: it "
                    f"uses {MODE_WORDS[mode]}.[/]")
        else:
            said = f"[dim]Training reads the {captioned} $extension caption(s): caption mode {mode.replace('_', ' ')}.[/]"
        self.query_one("#ds-caption-said", Static).update(Content.from_markup(said, extension=extension))
        self.query_one("#ds-caption-mode", Button).display = unused
        self.query_one("#ds-caption-use").display = True
        self._caption_use_of = (concept, folder, extension)

    def choose_caption_mode(self) -> None:
        from dbtui.screens.caption_mode import CaptionModeScreen

        concept = self.concept
        mode = self.session.get(f"concepts.{concept}.caption_mode") or "instance_prompt"
        self.app.push_screen(CaptionModeScreen(edited=False, mode=mode), lambda chosen: self._mode_chosen(concept, chosen))

    def _mode_chosen(self, concept: int, mode: str | None) -> None:
        if mode:
            self.session.set(f"concepts.{concept}.caption_mode", mode)
            self.session.reports.pop(concept, None)  # its check judged the captions under the mode before
            self.notify(f"Caption mode: {mode.replace('_', ' ')}")
            if concept == self.concept:
                self._show_findings("caption mode changed since the check: ctrl+r checks again")
                self.show_caption_use()
                self._token_check()  # whether the concept needs an identifier depends on the mode
