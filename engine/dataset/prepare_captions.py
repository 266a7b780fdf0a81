"""The captions beside prepared copies: copied as UTF-8, set aside when their original is gone, and kept as they are
when the user has edited them there since dbtui copied them.

Each copy's manifest entry records (under ``CAPTION``) the SHA-256 of the caption dbtui last put beside it: a caption
that still holds just that is dbtui's to replace or set aside; any other one (also beside a copy dbtui never put a
caption beside) was written in the prepared folder (the wizard's caption review edits the folder the concept trains
from, which after Prepare is the copies') and is the user's. A caption replaced is first kept in the prepared
folder's caption history (engine/dataset/captions.py), as a bulk edit keeps it.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from engine.data.caption_text import CaptionFileError
from engine.dataset.caption_files import atomic_write_text
from engine.dataset.caption_renames import rename_advice
from engine.dataset.captions import HISTORY_DIR, CaptionStore, read_caption
from engine.dataset.errors import CaptionError, DatasetError
from engine.data.unread_captions import USUAL_CAPTION_EXTENSIONS
from engine.dataset.files import caption_owners, caption_path, how_misnamed, misnamed_captions

CAPTION = "caption"  # the manifest entry's key for the SHA-256 of the caption dbtui last copied beside the copy


@dataclass
class CaptionCopies:
    copied: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)  # (caption file, reason) of captions not copied
    stale: list[str] = field(default_factory=list)  # captions whose source caption is gone, set aside
    edited: list[str] = field(default_factory=list)  # captions edited beside the copies since: kept, not replaced
    set_aside_in: Path | None = None


def write_prepared_file(path: Path, text: str) -> None:
    try:
        atomic_write_text(path, text)
    except OSError as error:
        raise DatasetError(f"cannot write {path} ({error.strerror or error}): check that the prepared folder "
                           "is writable and has free space") from None


def copy_captions(copies: list[tuple[Path, Path, dict]], src: Path, dst: Path, extension: str) -> CaptionCopies:
    """Each (image, its copy, the copy's manifest entry)'s caption beside the copy; the entries' ``CAPTION`` follow."""
    done, aside, history = CaptionCopies(), _SetAside(dst), CaptionStore(dst, extension)
    # Photo.TXT or photo.jpg.txt beside photo.jpg: training does not read it, and neither does prepare, which says so
    # (as the doctor does) rather than leave the copy captionless without a word.
    owners = caption_owners([image for image, _, _ in copies], extension)
    for expected, near in misnamed_captions(list(owners), extension).items():
        done.failures.append((str(near), _misnamed_reason(expected, near, owners[expected], extension)))
    for image, output, entry in copies:
        source, target = caption_path(image, extension), caption_path(output, extension)
        try:
            what, made = _copy_caption(source, target, src, entry.get(CAPTION), aside, history)
        except (CaptionFileError, DatasetError) as error:
            done.failures.append((str(source), str(error)))
            continue
        done.copied += 1 if what == "copied" else 0
        if what == "set aside":
            done.stale.append(str(target))
        elif what == "edited":
            done.edited.append(str(target))
        entry.pop(CAPTION, None)
        if made:
            entry[CAPTION] = made
    done.set_aside_in = aside.folder
    return done


def _misnamed_reason(expected: Path, near: Path, owners: list[Path], extension: str) -> str:
    """Why ``near`` is not copied, and the renames that have it read (``rename_advice``)."""
    names = ", ".join(o.name for o in owners[:-1]) + (" and " if len(owners) > 1 else "") + owners[-1].name
    return (f"its name differs from {expected.name}, the caption name of {names}, in {how_misnamed(expected, near)}, "
            f"so it is not read; {rename_advice(expected, near, owners, extension)}, and prepare again")


class _SetAside:
    """Moves the captions whose source caption is gone into a new folder of the prepared folder's caption history,
    made on the first one: it may be the last copy of text the user wrote (the originals replaced by images alone)."""

    def __init__(self, dst: Path):
        self.dst, self.folder = dst, None

    def move(self, caption: Path) -> None:
        if self.folder is None:
            base = self.dst / HISTORY_DIR / time.strftime("removed-%Y%m%d-%H%M%S")
            self.folder, count = base, 1
            while self.folder.exists():  # another run within the same second
                count += 1
                self.folder = base.with_name(f"{base.name}-{count}")
        kept = self.folder / caption.relative_to(self.dst)
        kept.parent.mkdir(parents=True, exist_ok=True)
        os.replace(caption, kept)


def _copy_caption(source: Path, target: Path, root: Path, made: str | None, aside: _SetAside,
                  history: CaptionStore) -> tuple[str, str | None]:
    """Copy one caption as UTF-8 (whatever readable encoding it had). Returns what was done ("copied", "set aside",
    "edited" or "") and the SHA-256 to record for the caption now beside the copy (None when none).

    With the source caption gone, the one an earlier run copied (``made``, its SHA-256) would go on training from
    the prepared folder: it is set aside, unless the user has edited it since (then it is theirs and stays, and so
    does the record, which keeps it theirs once the source caption is back)."""
    text = read_caption(source, root)
    data = None if text is None else text.encode("utf-8")
    theirs = _users(target, made, data)
    if data is None:
        if theirs or made is None or target.is_symlink() or not target.is_file():
            return "", made if theirs else None
        try:
            aside.move(target)
        except OSError as error:
            raise DatasetError(f"cannot move {target}, whose source caption is gone, into {aside.folder} "
                               f"({error.strerror or error}): move or delete it yourself, or it still trains") from None
        return "set aside", None
    if target.is_file() and target.read_bytes() == data:
        return "", _digest(data)
    if theirs:  # the record stays dbtui's last copy (or none), so the caption stays the user's on every later run
        return "edited", made
    try:
        history.keep(target)
    except CaptionError as error:
        raise DatasetError(f"{error}; {target} was not replaced by its original's caption") from None
    write_prepared_file(target, text)
    return "copied", _digest(data)


def _users(target: Path, made: str | None, data: bytes | None) -> bool:
    """Whether ``target`` is a caption of the user's: one holding neither ``data`` (the source caption's text) nor
    what dbtui last put there (``made``). Unreadable, it is left to the steps that follow, which say so."""
    try:
        current = target.read_bytes() if target.is_file() else None
    except OSError:
        return False
    return current is not None and current != data and _digest(current) != made


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def captions_of_another_extension(images: list[Path], extension: str) -> tuple[str, list[Path]]:
    """(the extension, its files) of the captions beside ``images`` under a usual extension other than ``extension``,
    when no image has one of ``extension``: prepare copies none of them, and without a word the copies trained with
    no caption. One differing only in letter case is not counted: prepare names each such caption itself."""
    return next(iter(captions_of_other_extensions(images, extension, letter_case=False).items()), ("", []))


def captions_of_other_extensions(images: list[Path], extension: str, *,
                                 letter_case: bool = True) -> dict[str, list[Path]]:
    """Each usual caption extension other than ``extension`` with its files beside ``images``, the most used first,
    when no image has a caption of ``extension``; empty where one has. ``letter_case``: one that differs only in
    letter case (.txt for .TXT) counts as another, as it is another file where names are case-sensitive."""
    if any(os.path.lexists(caption_path(image, extension)) for image in images):
        return {}
    same = extension if letter_case else extension.lower()
    found = {other: [path for image in images if os.path.lexists(path := caption_path(image, other))]
             for other in USUAL_CAPTION_EXTENSIONS if other != same}
    return {other: paths for other, paths in sorted(found.items(), key=lambda item: -len(item[1])) if paths}
