"""Whether the caption screen left any caption other than it found it: leaving asks to train with edited captions
only then. No widgets here."""

from __future__ import annotations

from pathlib import Path


class CaptionEdits:
    """The caption files saved or reverted here by hand, or bulk edited (or undone), byte for byte as first found,
    and whether auto-caption wrote some: a save put back with F2, or a bulk edit undone, leaves its files as they
    were."""

    def __init__(self) -> None:
        self._before: dict[Path, bytes | None] = {}
        self._by_job = False

    def before_write(self, *captions: Path) -> None:
        """Called before a save, a revert, a bulk edit or its undo writes ``captions``: the first version of each here
        is what a change is of."""
        for caption in captions:
            if caption not in self._before:
                self._before[caption] = _held(caption)

    def by_job(self, changed: bool) -> None:
        self._by_job = self._by_job or changed

    def changed(self) -> bool:
        """A caption differs from what it was: auto-caption wrote some, or a file written here holds other bytes now."""
        return self._by_job or any(_held(caption) != before for caption, before in self._before.items())


def _held(caption: Path) -> bytes | None:
    """The file's bytes; None when there is none (or it cannot be read, which no save here can have changed)."""
    try:
        return caption.read_bytes()
    except OSError:
        return None
