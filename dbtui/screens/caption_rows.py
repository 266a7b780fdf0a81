"""The caption screen's table: each image's caption (or why it cannot be read) and the tag counts.

Read once, then kept up to date a row at a time: a save changes one caption, so it must not read
every caption of a 3,000-image folder again. No widgets here: a worker thread may build one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual.content import Content

from dbtui.cli.printable import printable

from engine.dataset.caption_tags import split_tags
from engine.errors import DbtuiError


_PROGRESS_EVERY = 50  # captions read between two progress reports: a message each would flood the screen's queue

# How the problem of a caption named but for case or accents begins: it is there, though training does not read it.
_MISNAMED = "Its caption file is named "


def read_caption_row(store: Any, image: Path, misnamed: dict[Path, Path] | None = None) -> tuple[str, str]:
    """(caption, "") or ("", why it cannot be read or is not the image's): one unreadable file never stops the
    screen. ``misnamed``: ``store.misnamed()`` of every image, read once for the whole folder."""
    try:
        text = store.read(image)
    except DbtuiError as error:
        return "", str(error)
    caption = store.path_for(image)
    near = None if text is not None else (store.misnamed([image]) if misnamed is None else misnamed).get(caption)
    if near is not None:  # "(none)" said nothing of the user's text there, which a caption saved here would hide
        return "", (f"{_MISNAMED}{near.name}, not {caption.name}, so training does not read it: rename it to "
                    f"{caption.name}. A caption saved here is written to {caption.name} beside it.")
    return as_trained(text), ""


def as_trained(text: str | None) -> str:
    """A caption's words as the text encoder reads them, one space between each: its tokenizer reads a line break
    (a CRLF file showed on two lines) or a run of spaces as one space, and a save writes them so."""
    return " ".join((text or "").split())


def already_holds(store: Any, image: Path, caption: str) -> bool:
    """True when ``image``'s caption file already trains as ``caption`` (a CRLF file shows on one line): saving it
    again would only rewrite the user's file and push its last version out of the history."""
    try:
        text = store.read(image)
    except DbtuiError:
        return False  # unreadable: the save is what replaces it
    return text is not None and as_trained(text) == caption


def shared_note(others: list[Path]) -> Content:
    """What the status says first of a caption file other images share ("": none): a save changes theirs too."""
    if not others:
        return Content()
    more = f" and {len(others) - 1} more" if len(others) > 1 else ""
    return Content.from_markup(f"[yellow]Shared[/] with $name{more}: a save changes their caption too. ",
                               name=printable(others[0].name))


def row_status(problem: str) -> Content:
    """The editor's status line for a caption with ``problem`` ("": none). File names and errors are values, not
    markup: escaped, one ending in \\ ate the closing tag after it, and "[$x]" vanished as a variable."""
    if problem.startswith(_MISNAMED):
        return Content.from_markup("[yellow]Caption misnamed:[/] $problem", problem=problem)
    if problem:  # what to do first: the status shows three lines, and the reason can be long
        return Content.from_markup("[red]Unreadable caption:[/] typing one and saving writes it as UTF-8; F2 brings the "
                                   "old file back. $problem", problem=problem)
    return Content("Ctrl+S saves this caption.")


class CaptionRows:
    """Captions by image, with the number of caption files that hold each tag: a.jpg and a.png share a.txt,
    which counts once, as ``CaptionStore.tag_frequency`` and ``dataset caption --frequency`` count it."""

    def __init__(self, caption_of: Callable[[Path], Path]) -> None:
        self._caption_of = caption_of  # the file an image's caption is written to (b.txt -> a.txt: a.txt)
        self._files: dict[Path, Path] = {}  # each image's, found once: a save must not resolve 3,000 links again
        self._images: dict[Path, list[Path]] = {}  # each caption file's images
        self._rows: dict[Path, tuple[str, str]] = {}
        self._captions: dict[Path, str] = {}  # each caption file's text, which the counts are of
        self._counts: Counter[str] = Counter()

    @classmethod
    def read(cls, store: Any, images: list[Path], progress: Callable[[int], None] | None = None) -> CaptionRows:
        """Every image's row; ``progress`` is told how many are read, now and then (a worker shows it)."""
        rows = cls(store.caption_file)
        misnamed = store.misnamed(images)
        for done, image in enumerate(images, 1):
            rows.set(image, *read_caption_row(store, image, misnamed))
            if progress is not None and (done % _PROGRESS_EVERY == 0 or done == len(images)):
                progress(done)
        return rows

    @classmethod
    def unread(cls, caption_of: Callable[[Path], Path], images: list[Path], reason: str) -> CaptionRows:
        """Every image's row as unreadable for ``reason``: the captions could not be read at all."""
        rows = cls(caption_of)
        for image in images:
            rows.set(image, "", reason)
        return rows

    def get(self, image: Path) -> tuple[str, str]:
        return self._rows.get(image, ("", ""))

    def set(self, image: Path, text: str, problem: str = "") -> bool:
        """Record ``image``'s caption; True when that changed its row."""
        if self._rows.get(image) == (text, problem):
            return False
        self._rows[image] = (text, problem)
        caption = self.file_of(image)
        old = self._captions.get(caption)
        if old != text:
            if old is not None:
                self._counts.subtract(_tags(old))
            self._captions[caption] = text
            self._counts.update(_tags(text))
        return True

    def file_of(self, image: Path) -> Path:
        """The file ``image``'s caption is written to."""
        if image not in self._files:
            self._files[image] = caption = self._caption_of(image)
            self._images.setdefault(caption, []).append(image)
        return self._files[image]

    def shared_with(self, image: Path) -> list[Path]:
        """The other images whose caption is the same file (a.png beside a.jpg, b.jpg by its link b.txt -> a.txt)."""
        return [other for other in self._images.get(self.file_of(image), []) if other != image]

    def label(self, image: Path) -> Content:
        """The image's line in the list: its name, and whether its caption is missing or unreadable."""
        text, problem = self.get(image)
        if problem.startswith(_MISNAMED):
            mark = " [yellow](misnamed)[/]"
        else:
            mark = " [red](unreadable)[/]" if problem else ("" if text else " [dim](none)[/]")
        # One line per image: a name's newline showed new⏎line.png as two images, "new" and "line.png".
        return Content.from_markup("$name" + mark, name=printable(image.name))

    def top_tags(self, count: int) -> list[tuple[str, int]]:
        """The ``count`` tags most caption files hold, most frequent first."""
        held = [(tag, n) for tag, n in self._counts.items() if n > 0]
        return sorted(held, key=lambda item: (-item[1], item[0]))[:count]


def _tags(caption: str) -> set[str]:
    """A caption's tags, each once: the counts are of captions, not of repeats."""
    return {tag for tag in split_tags(caption) if tag}
