"""Caption files: atomic reads and writes that keep the earlier versions, bulk tag edits, undo.

Captions are comma-separated tags (or one sentence, which is a single "tag"). Each write goes
to a temporary file that replaces the caption only when complete, so an interrupted write
leaves the old caption intact. Under ``.dbtui-captions-history/`` each rewritten caption keeps,
byte for byte, the version its last write replaced (at its own relative path: what ``revert``
swaps back) and, under ``.originals/``, the first version dbtui replaced, which is never
overwritten. The last bulk operation is journaled there so ``undo()`` works in a later session too.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

from engine.data.caption_text import CaptionFileError, caption_words, read_caption, read_caption_file
from engine.dataset.caption_bulk_plan import BulkPlan, plan_bulk_edit
from engine.dataset.caption_changes import (Change, ChangeSet, JournalEntry, Unreadable, entries_text, journal_text,
                                            nothing_to_undo, read_journal, refuse_too_big)
from engine.dataset.caption_files import atomic_write_bytes, atomic_write_text, caption_bytes, not_to_replace, replaced_text
from engine.dataset.caption_tags import join_tags, one_tag, said_pattern, split_tags, tag_key, unique_tags
from engine.dataset.errors import CaptionError
from engine.dataset.files import (caption_owners, caption_path, checked_folder, link_target, linked_captions, list_images,
                                  misnamed_captions, scan_folder)
from engine.dataset.options import checked_caption_extension
from engine.events import Emit, Event, PhaseProgress, PhaseStarted

HISTORY_DIR = ".dbtui-captions-history"
ORIGINALS_DIR = ".originals"  # a hidden name: no caption's own relative path can be it
_JOURNAL = "last-bulk-operation.json"


class CaptionStore:
    """The caption files of the images in ``folder``."""

    def __init__(self, folder: Path | str, extension: str = ".txt", *, recursive: bool = False, list_once: bool = False):
        """``list_once``: the images are listed on first use and that list kept, for one command's several steps (a
        --add-tag that changed nothing listed 10,000 images three times); a store that lives on (the wizard's) lists
        them at each use, so it sees pictures added meanwhile."""
        # Absolute: image paths come back joined to the folder, and the undo journal must outlive the working directory.
        self.folder = Path(os.path.abspath(folder))
        self.extension = checked_caption_extension(extension)
        self.recursive = recursive
        self.history = self.folder / HISTORY_DIR
        self._list_once, self._listed = list_once, None

    def images(self) -> list[Path]:
        if self._listed is not None:
            return list(self._listed)
        images = list_images(self.folder, recursive=self.recursive)
        if self._list_once:
            self._listed = images
        return list(images)

    def unread_folders(self) -> tuple[Unreadable, ...]:
        """The sub-folders a recursive store cannot read or enter: their captions are in no count and no edit, which
        a bulk edit said nothing of (before, one that could be listed but not entered stopped it with a traceback)."""
        if not self.recursive:  # the folder itself: the listing refuses it, saying why
            return ()
        refused = scan_folder(self.folder, recursive=True).refused
        return tuple(Unreadable(r.path, f"{r.path}: {r.reason}{f'; {r.fix}' if r.fix else ''}") for r in refused
                     if r.folder and r.code == "unreadable")

    def path_for(self, image: Path | str) -> Path:
        return caption_path(self.folder / image, self.extension)

    def caption_file(self, image: Path | str) -> Path:
        """The file ``image``'s caption is written to: ``path_for``, or the caption of the folder it links to."""
        return link_target(self.path_for(image), self.folder)

    def misnamed(self, images: list[Path] | None = None) -> dict[Path, Path]:
        """The caption files of ``images`` (all by default) that are missing while one named but for letter case or
        accents is there (photo.TXT for photo.jpg), and that one: training does not read it (``caption_misnamed``)."""
        return misnamed_captions([self.path_for(i) for i in images] if images is not None else list(self.owners()),
                                 self.extension)

    def read(self, image: Path | str) -> str | None:
        """The caption of ``image`` (a path or a name in the folder), or None when it has none."""
        try:
            text = read_caption(self.path_for(image), self.folder)
        except CaptionFileError as error:
            raise CaptionError(str(error)) from None
        return None if text is None else caption_words(text)

    def write(self, image: Path | str, caption: str) -> None:
        """Replace the caption atomically; the old one is kept in the history folder. One made read-only (or a folder in
        its place) is refused, saying what to do."""
        if why := not_to_replace(self.caption_file(image)):
            raise CaptionError(why)
        data = caption_bytes(caption, replaced_text(self.caption_file(image)))
        refuse_too_big(self.caption_file(image), data)
        with self._writable():  # through a link (b.txt -> a.txt): the images keep sharing it
            self._write(self.caption_file(image), data)

    def raw(self, image: Path | str) -> bytes | None:
        """The caption file of ``image`` byte for byte; None when it has none (or it cannot be read)."""
        try:
            return self.path_for(image).read_bytes()
        except OSError:
            return None

    def write_if_unchanged(self, image: Path | str, caption: str, before: bytes | None) -> bool:
        """``write``, only while the caption file still holds ``before`` (``raw`` when the caller looked): False,
        and nothing written, when it was written since (typed by hand while a long job ran), which stays."""
        if self.raw(image) != before:
            return False
        self.write(image, caption)
        return True

    def keep(self, path: Path) -> None:
        """Keep the caption file ``path`` (in the folder) in the history, as ``write`` does before it replaces one:
        for a caller about to replace it itself (prepare writes the originals' text byte for byte)."""
        with self._writable():
            if path.is_file():
                current = path.read_bytes()  # the version replaced exactly, whatever its encoding
                self._keep_original(path, current)
                _write_kept(self._kept(path), current)

    def previous(self, image: Path | str) -> str | None:
        """The version the last write replaced, if any."""
        try:
            return read_caption_file(self._kept(self.caption_file(image)))
        except CaptionFileError as error:
            raise CaptionError(str(error)) from None

    def revert(self, image: Path | str) -> bool:
        """Swap the caption with the version its last write replaced, byte for byte whatever its encoding (a second
        revert swaps them back); False when it has no such version."""
        path = self.caption_file(image)
        previous = self._kept(path)
        with self._writable():
            if not previous.is_file():
                return False
            if why := not_to_replace(path):
                raise CaptionError(why)
            older = previous.read_bytes()
            if not path.is_file():
                atomic_write_bytes(path, older)
                previous.unlink()
                return True
            newer = path.read_bytes()
            self._keep_original(path, newer)
            atomic_write_bytes(path, older)
            atomic_write_bytes(previous, newer)
        return True

    def unreadable(self) -> tuple[Unreadable, ...]:
        """The caption files that cannot be read as text, and why (``tag_frequency`` leaves them out)."""
        found = []
        for image, path in self._caption_files():
            try:
                self.read(image)
            except CaptionError as error:
                found.append(Unreadable(path, str(error)))
        return tuple(found)

    def _caption_files(self) -> Iterator[tuple[Path, Path]]:
        """(image, caption file) for each caption file once: a.jpg and a.png share a.txt (or b.txt links to it), a
        file handled once (twice, its history would keep the half-edited text, and undo would call it edited since)."""
        for path, owners in linked_captions(self.owners(), self.folder).items():
            yield owners[0], path

    def owners(self) -> dict[Path, list[Path]]:
        """Each caption file and the images that share it (a.jpg and a.png share a.txt), in the folder's order."""
        return caption_owners(self.images(), self.extension)

    def tag_frequency(self) -> list[tuple[str, int]]:
        """Each tag and the number of readable captions that have it, most frequent first."""
        counts: Counter[str] = Counter()
        for image, _ in self._caption_files():
            with contextlib.suppress(CaptionError):  # unreadable ones are named by ``unreadable``
                counts.update({" ".join(t.split()) for t in split_tags(self.read(image) or "") if t})
        return sorted(counts.items(), key=lambda item: (-item[1], item[0]))

    # Bulk operations: each returns what it changed and can be undone with undo().

    def add_tag(self, tag: str, front: bool = True, *, emit: Emit | None = None) -> ChangeSet:
        """Add ``tag`` to every image's caption that lacks it (creating missing caption files).

        A caption that already says the tag as a whole word, in any case, has it: "ohwx" is not added
        to "a photo of ohwx dog", where a second identifier would be trained as part of the prompt.
        """
        tag = one_tag(tag)
        said = said_pattern(tag)

        def edit(tags: list[str]) -> list[str]:
            if any(said.search(t) for t in tags):
                return tags
            return [tag, *tags] if front else [*tags, tag]

        return self._bulk(f"add tag '{tag}'", edit, include_missing=True, emit=emit)

    def remove_tag(self, tag: str, *, emit: Emit | None = None) -> ChangeSet:
        """Remove ``tag`` from every caption, in any letter case, as ``add_tag`` finds it.

        A longer tag that says it as a word ("a photo of ohwx dog") is left whole, since a bulk edit does not
        rewrite sentences; its caption is named in ``still_said``, so nobody believes the word gone from it.
        """
        tag = one_tag(tag)
        said, key = said_pattern(tag), tag_key(tag)

        def still_said(caption: str) -> str | None:
            if not said.search(caption):
                return None
            return f"'{tag}' is still said inside a longer tag, which Remove tag leaves whole: edit it by hand"

        return self._bulk(f"remove tag '{tag}'", lambda tags: [t for t in tags if tag_key(t) != key],
                          left=still_said, emit=emit)

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
        """Keep each tag's first spelling: "dog, Dog" (or a tag said again across a line break) repeat one tag, as
        ``add_tag`` and ``remove_tag`` find it (``tag_key``)."""
        return self._bulk("remove duplicate tags", unique_tags)

    def trim(self) -> ChangeSet:
        """Collapse runs of spaces, strip each tag, drop empty tags."""
        return self._bulk_text("trim", lambda text: join_tags(re.sub(r"\s+", " ", t).strip() for t in split_tags(text)
                                                              if t.strip()))

    def undo(self, *, emit: Emit | None = None) -> ChangeSet:
        """Put back every caption the last bulk operation changed; files it created are removed."""
        journal = checked_folder(self.folder) / HISTORY_DIR / _JOURNAL  # a mistyped folder: said, not "nothing to undo"
        if not journal.exists():
            raise nothing_to_undo(self.folder, Path(HISTORY_DIR, _JOURNAL))
        operation, entries = read_journal(journal)
        with self._writable():
            return self._undo(operation, entries, journal, emit or _silent)

    def _undo(self, operation: str, entries: list[JournalEntry], journal: Path, emit: Emit) -> ChangeSet:
        changes, skipped, kept = [], [], []
        emit(PhaseStarted(phase="captions", total=len(entries), description=f"undo {operation}"))
        for done, entry in enumerate(entries, 1):
            emit(PhaseProgress(phase="captions", done=done, total=len(entries)))
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
                                                "kept as it is", "edited"))
                continue
            if not_to_replace(path):  # read_caption refused all but a regular file: this one is read-only
                kept.append(entry)
                skipped.append(Unreadable(path, f"caption file '{path}' is read-only, so it is left as it is and its "
                                                f"undo is kept: make it writable (chmod u+w '{path}'), then undo "
                                                "again (--undo; Ctrl+R in the wizard)", "read_only"))
                continue
            if entry.before is None:
                path.unlink(missing_ok=True)
            else:
                atomic_write_bytes(path, entry.raw)
            changes.append(Change(path, current, entry.before))
        if kept:  # the user fixes the permission and undoes again, rather than restore those by hand
            atomic_write_text(journal, entries_text(operation, kept))
        else:
            journal.unlink()
        return ChangeSet(f"undo {operation}", tuple(changes), tuple(skipped), undo=True)

    def _bulk(self, operation: str, edit: Callable[[list[str]], list[str]], include_missing: bool = False,
              left: Callable[[str], str | None] | None = None, emit: Emit | None = None) -> ChangeSet:
        def on_text(text: str) -> str:
            tags = [t for t in split_tags(text) if t] if text.strip() else []
            edited = edit(tags)
            # A caption the edit leaves as it was keeps its bytes (a CRLF line break, ", " spacing): not rewritten or
            # counted as changed. Trim, whose work is that spacing, rewrites it itself. A caption rewritten has each
            # tag on one line, as it trains and as the caption editor saves it: "red\r\nhat" came back on two lines.
            return text if edited == tags else join_tags(" ".join(tag.split()) for tag in edited)

        return self._bulk_text(operation, on_text, include_missing, left, emit)

    def _bulk_text(self, operation: str, edit: Callable[[str], str], include_missing: bool = False,
                   left: Callable[[str], str | None] | None = None, emit: Emit | None = None) -> ChangeSet:
        """Apply ``edit`` to every caption; ``left`` says why an edited caption still needs the user (or None)."""
        plan = plan_bulk_edit(self, edit, include_missing=include_missing, left=left, emit=emit or _silent)
        with self._writable():
            return self._apply(operation, plan, emit or _silent)

    def _apply(self, operation: str, plan: BulkPlan, emit: Emit) -> ChangeSet:
        changes = plan.changes
        # Journal first: if we are interrupted mid-way, undo still knows every original text. An edit that changed
        # nothing keeps the journal there, so a typo in the tag does not take away the undo of the edit before it.
        if changes:
            self.history.mkdir(exist_ok=True)
            atomic_write_text(self.history / _JOURNAL, journal_text(operation, self.folder, changes))
        emit(PhaseStarted(phase="captions", total=len(changes), description=operation))
        for done, (change, data) in enumerate(zip(changes, plan.written, strict=True), 1):
            self._write(change.path, data)
            emit(PhaseProgress(phase="captions", done=done, total=len(changes)))
        return ChangeSet(operation, tuple(changes), tuple(plan.skipped), tuple(plan.still))

    @contextlib.contextmanager
    def _writable(self) -> Iterator[None]:
        """A folder the user cannot write (or a full disk) is said as such, with the folder, not a traceback."""
        try:
            yield
        except OSError as error:
            where = f" ({error.filename})" if error.filename else ""
            raise CaptionError(f"cannot write captions in {self.folder}: {error.strerror or error}{where}; check that "
                               "the folder is writable by you (`ls -ld`) and the disk has room") from None

    def _kept(self, path: Path) -> Path:  # path absolute, as self.folder is: prepare names its copies as typed
        return self.history / Path(os.path.abspath(path)).relative_to(self.folder)

    def _original(self, path: Path) -> Path:
        return self.history / ORIGINALS_DIR / Path(os.path.abspath(path)).relative_to(self.folder)

    def _write(self, path: Path, data: bytes) -> None:
        self.keep(path)
        atomic_write_bytes(path, data)

    def _keep_original(self, path: Path, current: bytes) -> None:
        """Keep ``current`` as the caption's original unless one is kept already: the first version is never lost."""
        original = self._original(path)
        if original.is_file():
            return
        # A history kept before originals were has the previous version only, which is older than the caption now.
        previous = self._kept(path)
        _write_kept(original, previous.read_bytes() if previous.is_file() else current)


def _write_kept(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, data)


def _silent(event: Event) -> None:
    """The progress sink of a caller that shows none."""
