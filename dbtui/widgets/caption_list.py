"""The caption screen's image list: a row per image, labelled by its caption (``CaptionRows.label``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.widgets import OptionList
from textual.widgets.option_list import Option


class CaptionList(OptionList):
    """An option's id is its image's path."""

    def __init__(self) -> None:
        super().__init__(id="cap-images")

    def add_rows(self, rows: Any, images: list[Path]) -> None:
        self.add_options([Option(rows.label(image), id=str(image)) for image in images])

    def relabel(self, images: list[Path], old: Any, fresh: Any) -> None:
        """The rows whose caption ``fresh`` reads otherwise than ``old``, labelled afresh."""
        for index, image in enumerate(images):
            if fresh.get(image) != old.get(image):
                self.replace_option_prompt_at_index(index, fresh.label(image))

    def set_caption(self, images: list[Path], rows: Any, image: Path, text: str, problem: str = "") -> bool:
        """The rows of ``image``'s caption file (a.jpg and a.png share a.txt) set to ``text``, without reading the
        other captions; whether any changed."""
        sharing = {image, *rows.shared_with(image)}
        changed = False
        for index, other in enumerate(images):
            if other in sharing and rows.set(other, text, problem):
                self.replace_option_prompt_at_index(index, rows.label(other))
                changed = True
        return changed
