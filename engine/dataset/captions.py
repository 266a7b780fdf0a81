"""Caption files: atomic reads and writes that keep the previous version, bulk tag edits, undo.

Captions are comma-separated tags (or one sentence, which is a single "tag"). Each write goes
to a temporary file that replaces the caption only when complete, so an interrupted write
leaves the old caption intact. The previous version of every rewritten caption is kept under
``.dbtui-captions-history/``, and the last bulk operation is journaled there so ``undo()``
works in a later session too.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from engine.data.captions import caption_for
from engine.data.images import DataError
from engine.dataset.errors import CaptionError
from engine.dataset.files import caption_path, list_images

HISTORY_DIR = ".dbtui-captions-history"
_JOURNAL = "last-bulk-operation.json"


@dataclass(frozen=True)
class Change:
    """One caption file changed by a bulk operation; ``None`` means the file did not exist."""

    path: Path
    before: str | None
    after: str | None


@dataclass(frozen=True)
class ChangeSet:
    """What a bulk operation (or its undo) changed."""

    operation: str
    changes: tuple[Change, ...]

    def __len__(self) -> int:
        return len(self.changes)


def split_tags(caption: str) -> list[str]:
    return [t.strip() for t in caption.split(",")]


def join_tags(tags: Iterable[str]) -> str:
    return ", ".join(tags)


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and ``os.replace`` (all or nothing)."""
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


class CaptionStore:
    """The caption files of the images in ``folder``."""

    def __init__(self, folder: Path | str, extension: str = ".txt", *, recursive: bool = False):
        self.folder = Path(folder)
        self.extension = extension if extension.startswith(".") else "." + extension
        self.recursive = recursive
        self.history = self.folder / HISTORY_DIR

    def images(self) -> list[Path]:
        return list_images(self.folder, recursive=self.recursive)

    def path_for(self, image: Path | str) -> Path:
        return caption_path(self.folder / image, self.extension)

    def read(self, image: Path | str) -> str | None:
        """The caption of ``image`` (a path or a name in the folder), or None when it has none."""
        path = self.path_for(image)
        try:
            return path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as error:
            raise CaptionError(f"cannot read caption {path}: {error}; fix or delete the file") from error

    def write(self, image: Path | str, caption: str) -> None:
        """Replace the caption atomically; the old one is kept in the history folder."""
        self._write(self.path_for(image), caption)

    def previous(self, image: Path | str) -> str | None:
        """The version the last write replaced, if any."""
        kept = self._kept(self.path_for(image))
        return kept.read_text(encoding="utf-8") if kept.exists() else None

    def captions(self) -> dict[Path, str | None]:
        return {image: self.read(image) for image in self.images()}

    def tag_frequency(self) -> list[tuple[str, int]]:
        """Each tag and the number of captions that have it, most frequent first."""
        counts: Counter[str] = Counter()
        for caption in self.captions().values():
            counts.update({t for t in split_tags(caption or "") if t})
        return sorted(counts.items(), key=lambda item: (-item[1], item[0]))

    # Bulk operations: each returns what it changed and can be undone with undo().

    def add_tag(self, tag: str, front: bool = True) -> ChangeSet:
        """Add ``tag`` to every image's caption that lacks it (creating missing caption files)."""
        tag = tag.strip()

        def edit(tags: list[str]) -> list[str]:
            if tag in tags:
                return tags
            return [tag, *tags] if front else [*tags, tag]

        return self._bulk(f"add tag '{tag}'", edit, include_missing=True)

    def remove_tag(self, tag: str) -> ChangeSet:
        tag = tag.strip()
        return self._bulk(f"remove tag '{tag}'", lambda tags: [t for t in tags if t != tag])

    def replace(self, find: str, replacement: str, *, regex: bool = False) -> ChangeSet:
        """Find and replace text in every caption (plain text unless ``regex``)."""
        pattern = re.compile(find if regex else re.escape(find))
        return self._bulk_text(f"replace '{find}' with '{replacement}'", lambda text: pattern.sub(replacement, text))

    def dedupe_tags(self) -> ChangeSet:
        return self._bulk("remove duplicate tags", lambda tags: list(dict.fromkeys(tags)))

    def trim(self) -> ChangeSet:
        """Collapse runs of spaces, strip each tag, drop empty tags."""
        return self._bulk("trim", lambda tags: [re.sub(r"\s+", " ", t).strip() for t in tags if t.strip()])

    def undo(self) -> ChangeSet:
        """Put back every caption the last bulk operation changed; files it created are removed."""
        journal = self.history / _JOURNAL
        if not journal.exists():
            raise CaptionError("nothing to undo: no bulk caption operation has been done in this folder")
        data = json.loads(journal.read_text(encoding="utf-8"))
        changes = []
        for item in data["changes"]:
            path = Path(item["path"])
            current = path.read_text(encoding="utf-8") if path.exists() else None
            if item["before"] is None:
                path.unlink(missing_ok=True)
            else:
                atomic_write_text(path, item["before"])  # byte-for-byte what was there
            changes.append(Change(path, current, item["before"]))
        journal.unlink()
        return ChangeSet(f"undo {data['operation']}", tuple(changes))

    def _bulk(self, operation: str, edit: Callable[[list[str]], list[str]], include_missing: bool = False) -> ChangeSet:
        def on_text(text: str) -> str:
            tags = [t for t in split_tags(text) if t] if text.strip() else []
            return join_tags(edit(tags))

        return self._bulk_text(operation, on_text, include_missing)

    def _bulk_text(self, operation: str, edit: Callable[[str], str], include_missing: bool = False) -> ChangeSet:
        changes = []
        for image in self.images():
            path = self.path_for(image)
            before = path.read_text(encoding="utf-8") if path.exists() else None
            if before is None and not include_missing:
                continue
            after = edit((before or "").strip())
            if after != (before or "").strip():
                changes.append(Change(path, before, after))
        # Journal first: if we are interrupted mid-way, undo still knows every original text.
        self.history.mkdir(exist_ok=True)
        journal = {"operation": operation, "changes": [{"path": str(c.path), "before": c.before} for c in changes]}
        atomic_write_text(self.history / _JOURNAL, json.dumps(journal, ensure_ascii=False))
        for change in changes:
            self._write(change.path, change.after or "")
        return ChangeSet(operation, tuple(changes))

    def _kept(self, path: Path) -> Path:
        return self.history / path.relative_to(self.folder)

    def _write(self, path: Path, caption: str) -> None:
        text = caption.strip() + "\n"
        if path.exists():
            kept = self._kept(path)
            kept.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(kept, path.read_text(encoding="utf-8"))
        atomic_write_text(path, text)


def training_caption(image: Path, caption_mode: str, instance_prompt: str | None, extension: str = ".txt") -> str | None:
    """The text an image is trained with under ``caption_mode``; None when its caption file is needed but missing."""
    try:
        return caption_for(image, caption_mode, instance_prompt or "", extension) or None
    except DataError:
        return None
