"""What a bulk caption operation changed, and its journal: the record that lets ``undo()`` put it back."""

from __future__ import annotations

import base64
import json
import os
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from engine.data.caption_text import MAX_CAPTION_BYTES
from engine.dataset.errors import CaptionError


def refuse_too_big(path: Path, data: bytes) -> None:
    """Refuse, before anything is written, a caption bigger than any reader takes (training, the check, undo); ``data``:
    the bytes that would replace ``path`` (caption_files.caption_bytes), its line break as long as it is."""
    size = len(data)
    if size > MAX_CAPTION_BYTES:
        raise CaptionError(f"the edit would make caption file '{path}' {size:,} bytes, over the "
                           f"{MAX_CAPTION_BYTES // 1024} KiB a caption may hold (the text encoder reads 77 tokens, "
                           "about 300 characters): nothing was changed; give a shorter text")


@dataclass(frozen=True)
class Change:
    """One caption file changed by a bulk operation; ``None`` means the file did not exist."""

    path: Path
    before: str | None
    after: str | None


@dataclass(frozen=True)
class Unreadable:
    """A caption file a bulk operation left alone (it cannot be read as text, or was edited since) or did not
    create, and why."""

    path: Path
    reason: str
    # "unreadable": not readable text, which `dataset check --caption-mode caption_file` names too; "edited": changed
    # since the operation undo would put back; "not_created": missing, and left so (a link to no file, no picture);
    # "read_only": made read-only (chmod 0444), which no edit replaces.
    kind: Literal["unreadable", "edited", "not_created", "read_only"] = "unreadable"


@dataclass(frozen=True)
class ChangeSet:
    """What a bulk operation (or its undo) changed, and the caption files it had to skip."""

    operation: str
    changes: tuple[Change, ...]
    skipped: tuple[Unreadable, ...] = ()
    # Captions, changed or not, that still say the tag remove_tag removed, inside a longer tag it leaves whole.
    still_said: tuple[Unreadable, ...] = ()
    undo: bool = False  # an undo's changes: its removals are of captions its operation had created

    def __len__(self) -> int:
        return len(self.changes)

    @property
    def created(self) -> int:
        """How many of the changes made a caption file where the image had none."""
        return sum(1 for change in self.changes if change.before is None and change.after is not None)

    @property
    def removed(self) -> int:
        """How many of the changes removed a caption file: an undo's, of those its operation had created."""
        return sum(1 for change in self.changes if change.before is not None and change.after is None)

    def counts_said(self, had_none: str) -> str:
        """``N caption(s) changed, M created for images that {had_none}``; an undo's removals and restorations said as
        such, not as captions changed (it removed the file its operation had created, and said it changed it)."""
        said = f"{len(self) - self.created - self.removed} caption(s) changed"
        if self.created:
            said += f", {self.created} restored" if self.undo else f", {self.created} created for images that {had_none}"
        if self.removed:
            said += f", {self.removed} removed" + (" (made by the edit undone)" if self.undo else "")
        return said


@dataclass(frozen=True)
class JournalEntry:
    path: Path
    before: str | None  # None: the bulk operation created the file
    raw: bytes  # the file exactly as it was
    after: str | None  # the text the operation wrote (stripped); None in a journal that did not record it


def journal_text(operation: str, folder: Path, changes: list[Change]) -> str:
    """The journal of ``changes`` (read before any is written), as JSON."""
    # Paths relative to the folder, so that a copied or moved folder undoes its own files; "after" tells an undo which
    # captions were edited by hand since, which it then keeps.
    return entries_text(operation, [
        JournalEntry(c.path.relative_to(folder), c.before, b"" if c.before is None else c.path.read_bytes(),
                     (c.after or "").strip()) for c in changes])


def entries_text(operation: str, entries: list[JournalEntry]) -> str:
    """The journal of ``entries``: a bulk operation's, or those of one an undo could not put back yet."""
    # "bytes" keeps each file exactly as it was (a UTF-16 caption is undone to UTF-16, not re-encoded). ASCII escapes
    # keep file names that are not valid UTF-8 (lone surrogates) round-tripping.
    return json.dumps({"operation": operation, "changes": [
        {"path": str(e.path), "before": e.before, "after": e.after,
         "bytes": None if e.before is None else base64.b64encode(e.raw).decode("ascii")} for e in entries]})


def read_journal(path: Path) -> tuple[str, list[JournalEntry]]:
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
            entries.append(JournalEntry(Path(item["path"]), before, raw, after))
        return str(data.get("operation", "the last bulk edit")), entries
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        raise CaptionError(f"the undo journal {path} is damaged, so the last bulk operation cannot be undone; "
                           f"the previous version of each caption is kept in {path.parent}") from None


def nothing_to_undo(folder: Path, journal: Path) -> CaptionError:
    """Undo's refusal where ``folder`` has no journal (``journal``: its path relative to the folder it undoes)."""
    return CaptionError("nothing to undo: undo puts back the last bulk caption operation only, and this folder has none "
                        "to put back (none was done here, or the last one is undone already)" + _undo_above(folder, journal))


def _undo_above(folder: Path, journal: Path) -> str:
    """Where the journal of a bulk operation that changed captions in ``folder`` lives when a folder above it was
    edited (``-r``), and what to run there; "" when no such journal is found."""
    here = Path(os.path.abspath(folder))  # as the user spelt it, to say it back
    for above in here.parents:
        record = above / journal
        if not os.path.isfile(record):  # never raises, in a folder this user may not read either
            continue
        try:
            _, entries = read_journal(record)
        except CaptionError:
            continue
        if any((above / entry.path).is_relative_to(here) for entry in entries):
            return (f"; the last bulk operation that changed captions here was run on {above} and is recorded there: "
                    f"undo it with `dbtui dataset caption {shlex.quote(str(above))} --undo`")
    return ""
