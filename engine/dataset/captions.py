"""Caption files: atomic reads and writes that keep the previous version, bulk tag edits, undo.

Captions are comma-separated tags (or one sentence, which is a single "tag"). Each write goes
to a temporary file that replaces the caption only when complete, so an interrupted write
leaves the old caption intact. The previous version of every rewritten caption is kept under
``.dbtui-captions-history/``, and the last bulk operation is journaled there so ``undo()``
works in a later session too.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import stat
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from engine.data.caption_text import CaptionFileError, read_caption, read_caption_file
from engine.data.captions import caption_for
from engine.data.images import DataError
from engine.dataset.errors import CaptionError
from engine.dataset.files import caption_path, list_images
from engine.dataset.options import checked_caption_extension

HISTORY_DIR = ".dbtui-captions-history"
_JOURNAL = "last-bulk-operation.json"


@dataclass(frozen=True)
class Change:
    """One caption file changed by a bulk operation; ``None`` means the file did not exist."""

    path: Path
    before: str | None
    after: str | None


@dataclass(frozen=True)
class Unreadable:
    """A caption file a bulk operation left alone because it cannot be read as text."""

    path: Path
    reason: str


@dataclass(frozen=True)
class ChangeSet:
    """What a bulk operation (or its undo) changed, and the caption files it had to skip."""

    operation: str
    changes: tuple[Change, ...]
    skipped: tuple[Unreadable, ...] = ()

    def __len__(self) -> int:
        return len(self.changes)

    @property
    def created(self) -> int:
        """How many of the changes made a caption file where the image had none."""
        return sum(1 for change in self.changes if change.before is None and change.after is not None)


def split_tags(caption: str) -> list[str]:
    return [t.strip() for t in caption.split(",")]


def join_tags(tags: Iterable[str]) -> str:
    return ", ".join(tags)


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` (as UTF-8) to ``path`` through a temporary file and ``os.replace`` (all or nothing)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` all or nothing; the file keeps its permissions (a new one gets rw-r--r--)."""
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        mode = 0o644  # what a text editor would create under the usual umask; mkstemp's own is 0600
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(handle, mode)
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


class CaptionStore:
    """The caption files of the images in ``folder``."""

    def __init__(self, folder: Path | str, extension: str = ".txt", *, recursive: bool = False):
        # Absolute: image paths come back joined to the folder, and the undo journal must outlive the working directory.
        self.folder = Path(os.path.abspath(folder))
        self.extension = checked_caption_extension(extension)
        self.recursive = recursive
        self.history = self.folder / HISTORY_DIR

    def images(self) -> list[Path]:
        return list_images(self.folder, recursive=self.recursive)

    def path_for(self, image: Path | str) -> Path:
        return caption_path(self.folder / image, self.extension)

    def read(self, image: Path | str) -> str | None:
        """The caption of ``image`` (a path or a name in the folder), or None when it has none."""
        try:
            text = read_caption(self.path_for(image), self.folder)
        except CaptionFileError as error:
            raise CaptionError(str(error)) from None
        return None if text is None else text.strip()

    def write(self, image: Path | str, caption: str) -> None:
        """Replace the caption atomically; the old one is kept in the history folder."""
        with self._writable():
            self._write(self.path_for(image), caption)

    def previous(self, image: Path | str) -> str | None:
        """The version the last write replaced, if any."""
        try:
            return read_caption_file(self._kept(self.path_for(image)))
        except CaptionFileError as error:
            raise CaptionError(str(error)) from None

    def captions(self) -> dict[Path, str | None]:
        """Each image's caption (None: no caption file); images whose caption cannot be read are left out."""
        readable = {}
        for image in self.images():
            try:
                readable[image] = self.read(image)
            except CaptionError:
                continue
        return readable

    def unreadable(self) -> tuple[Unreadable, ...]:
        """The caption files that cannot be read as text, and why (see ``captions``)."""
        found = []
        for image in self.images():
            try:
                self.read(image)
            except CaptionError as error:
                found.append(Unreadable(self.path_for(image), str(error)))
        return tuple(found)

    def tag_frequency(self) -> list[tuple[str, int]]:
        """Each tag and the number of readable captions that have it, most frequent first."""
        counts: Counter[str] = Counter()
        for caption in self.captions().values():
            counts.update({t for t in split_tags(caption or "") if t})
        return sorted(counts.items(), key=lambda item: (-item[1], item[0]))

    # Bulk operations: each returns what it changed and can be undone with undo().

    def add_tag(self, tag: str, front: bool = True) -> ChangeSet:
        """Add ``tag`` to every image's caption that lacks it (creating missing caption files).

        A caption that already says the tag as a whole word, in any case, has it: "ohwx" is not added
        to "a photo of ohwx dog", where a second identifier would be trained as part of the prompt.
        """
        tag = _one_tag(tag)
        said = re.compile(rf"(?<!\w){re.escape(tag)}(?!\w)", re.IGNORECASE)

        def edit(tags: list[str]) -> list[str]:
            if any(said.search(t) for t in tags):
                return tags
            return [tag, *tags] if front else [*tags, tag]

        return self._bulk(f"add tag '{tag}'", edit, include_missing=True)

    def remove_tag(self, tag: str) -> ChangeSet:
        tag = _one_tag(tag)
        return self._bulk(f"remove tag '{tag}'", lambda tags: [t for t in tags if t != tag])

    def replace(self, find: str, replacement: str, *, regex: bool = False) -> ChangeSet:
        """Find and replace text in every caption (plain text unless ``regex``)."""
        if not find:
            raise CaptionError("the text to find is empty, which would match between every two characters: give the "
                               "text to replace")
        try:
            pattern = re.compile(find if regex else re.escape(find))
            if regex:
                pattern.sub(replacement, "")  # a bad group reference in the replacement fails here, not mid-way
        except re.error as error:
            raise CaptionError(
                f"'{find}' → '{replacement}' is not a valid regular expression replacement: {error}"
            ) from None
        # Plain text: the replacement is literal too (a backslash in it is not an escape).
        substitute = replacement if regex else (lambda match: replacement)
        return self._bulk_text(f"replace '{find}' with '{replacement}'", lambda text: pattern.sub(substitute, text))

    def dedupe_tags(self) -> ChangeSet:
        return self._bulk("remove duplicate tags", lambda tags: list(dict.fromkeys(tags)))

    def trim(self) -> ChangeSet:
        """Collapse runs of spaces, strip each tag, drop empty tags."""
        return self._bulk("trim", lambda tags: [re.sub(r"\s+", " ", t).strip() for t in tags if t.strip()])

    def undo(self) -> ChangeSet:
        """Put back every caption the last bulk operation changed; files it created are removed."""
        journal = self.history / _JOURNAL
        if not journal.exists():
            raise CaptionError("nothing to undo: undo puts back the last bulk caption operation only, and this folder has none "
                               "to put back (none was done here, or the last one is undone already)")
        operation, entries = _journal(journal)
        with self._writable():
            return self._undo(operation, entries, journal)

    def _undo(self, operation: str, entries: list[_Entry], journal: Path) -> ChangeSet:
        changes, skipped = [], []
        for entry in entries:
            path = self.folder / entry.path  # an absolute path (a journal written before paths were relative) stays
            try:
                current = read_caption(path, self.folder)
            except CaptionFileError as error:  # changed by hand since: not ours to overwrite blindly
                skipped.append(Unreadable(path, str(error)))
                continue
            if entry.before is None and current is None:  # created by the operation and already gone: nothing to undo
                continue
            if entry.after is not None and (current or "").strip() != entry.after:
                skipped.append(Unreadable(path, f"caption file '{path}' was edited since the bulk operation, so it is "
                                                "kept as it is"))
                continue
            if entry.before is None:
                path.unlink(missing_ok=True)
            else:
                atomic_write_bytes(path, entry.raw)
            changes.append(Change(path, current, entry.before))
        journal.unlink()
        return ChangeSet(f"undo {operation}", tuple(changes), tuple(skipped))

    def _bulk(self, operation: str, edit: Callable[[list[str]], list[str]], include_missing: bool = False) -> ChangeSet:
        def on_text(text: str) -> str:
            tags = [t for t in split_tags(text) if t] if text.strip() else []
            return join_tags(edit(tags))

        return self._bulk_text(operation, on_text, include_missing)

    def _bulk_text(self, operation: str, edit: Callable[[str], str], include_missing: bool = False) -> ChangeSet:
        changes, skipped = [], []
        for image in self.images():
            path = self.path_for(image)
            try:
                before = read_caption(path, self.folder)
            except CaptionFileError as error:  # one bad file never stops the others; it is reported
                skipped.append(Unreadable(path, str(error)))
                continue
            if before is None and not include_missing:
                continue
            if before is None and path.is_symlink():  # writing would replace the link, and undo delete it
                skipped.append(Unreadable(path, f"caption file '{path}' is a symbolic link to '{os.readlink(path)}', "
                                                "which does not exist, so it is left as it is: point the link at a "
                                                "caption file, or delete it"))
                continue
            after = edit((before or "").strip())
            if after != (before or "").strip():
                changes.append(Change(path, before, after))
        with self._writable():
            return self._apply(operation, changes, skipped)

    def _apply(self, operation: str, changes: list[Change], skipped: list[Unreadable]) -> ChangeSet:
        # Journal first: if we are interrupted mid-way, undo still knows every original text.
        self.history.mkdir(exist_ok=True)
        # "bytes" keeps each file exactly as it was (a UTF-16 caption is undone to UTF-16, not re-encoded).
        # Paths relative to the folder, so that a copied or moved folder undoes its own files; "after" tells an
        # undo which captions were edited by hand since, which it then keeps.
        journal = {"operation": operation, "changes": [
            {"path": str(c.path.relative_to(self.folder)), "before": c.before, "after": (c.after or "").strip(),
             "bytes": None if c.before is None else base64.b64encode(c.path.read_bytes()).decode("ascii")}
            for c in changes]}
        # ASCII escapes keep file names that are not valid UTF-8 (lone surrogates) round-tripping.
        atomic_write_text(self.history / _JOURNAL, json.dumps(journal))
        for change in changes:
            self._write(change.path, change.after or "")
        return ChangeSet(operation, tuple(changes), tuple(skipped))

    @contextlib.contextmanager
    def _writable(self) -> Iterator[None]:
        """A folder the user cannot write (or a full disk) is said as such, with the folder, not a traceback."""
        try:
            yield
        except OSError as error:
            where = f" ({error.filename})" if error.filename else ""
            raise CaptionError(f"cannot write captions in {self.folder}: {error.strerror or error}{where}; check that "
                               "the folder is writable by you (`ls -ld`) and the disk has room") from None

    def _kept(self, path: Path) -> Path:
        return self.history / path.relative_to(self.folder)

    def _write(self, path: Path, caption: str) -> None:
        text = caption.strip() + "\n"
        if path.is_file():
            kept = self._kept(path)
            kept.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(kept, path.read_bytes())  # the previous version exactly, whatever its encoding
        atomic_write_text(path, text)


def _one_tag(tag: str) -> str:
    """``tag`` stripped, refused when empty or holding the comma that separates tags."""
    tag = tag.strip()
    if not tag:
        raise CaptionError("the tag is empty: give the tag's text, e.g. ohwx")
    if "," in tag:
        raise CaptionError(f"'{tag}' holds a comma, which separates tags: give one tag at a time")
    return tag


@dataclass(frozen=True)
class _Entry:
    path: Path
    before: str | None  # None: the bulk operation created the file
    raw: bytes  # the file exactly as it was
    after: str | None  # the text the operation wrote (stripped); None in a journal that did not record it


def _journal(path: Path) -> tuple[str, list[_Entry]]:
    """The operation and its entries; anything unexpected in the file is a CaptionError, not a crash."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        entries = []
        for item in data["changes"]:
            before = item["before"]
            if not isinstance(before, (str, type(None))):
                raise TypeError(before)
            raw = item.get("bytes")
            raw = base64.b64decode(raw, validate=True) if raw else (before or "").encode("utf-8")
            after = item.get("after")
            if not isinstance(after, (str, type(None))):
                raise TypeError(after)
            entries.append(_Entry(Path(item["path"]), before, raw, after))
        return str(data.get("operation", "the last bulk edit")), entries
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        raise CaptionError(f"the undo journal {path} is damaged, so the last bulk operation cannot be undone; "
                           f"the previous version of each caption is kept in {path.parent}") from None


def training_caption(image: Path, caption_mode: str, instance_prompt: str | None, extension: str = ".txt") -> str | None:
    """The text an image is trained with under ``caption_mode``; None when its caption file is needed but missing."""
    try:
        return caption_for(image, caption_mode, instance_prompt or "", extension) or None
    except DataError:
        return None
