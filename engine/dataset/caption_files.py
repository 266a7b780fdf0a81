"""Writing a caption file all or nothing, and the caption files that may not be written: those made read-only, and
a folder (or pipe) where the caption file would be.

A write goes to a temporary file that replaces the caption, which the caption's own permissions do not stop (only
its folder's do): a file the user made read-only (chmod 0444) to keep it would be replaced in silence, so it is
refused here, as a text editor refuses it.
"""

from __future__ import annotations

import os
import re
import stat
import tempfile
from pathlib import Path

from engine.data.caption_text import CaptionFileError, read_caption_file


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` (as UTF-8) to ``path`` through a temporary file and ``os.replace`` (all or nothing)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def replaced_text(path: Path) -> str | None:
    """The text of the caption file ``path`` that a write replaces; None where there is none, or it is not readable
    text (replaced whole)."""
    try:
        return read_caption_file(path)
    except CaptionFileError:
        return None


def line_ending(caption: str, before: str | None) -> str:
    """The line break to end ``caption`` with as it replaces a caption file holding ``before`` (``replaced_text``):
    the one it holds itself, else the file's (a caption saved on Windows stays CRLF, not half CRLF and half LF), else
    "\\n"."""
    found = re.search(r"\r\n|\r|\n", caption.strip()) or re.search(r"\r\n|\r|\n", before or "")
    return found[0] if found else "\n"


def caption_bytes(caption: str, before: str | None) -> bytes:
    """What replaces a caption file holding ``before`` (``replaced_text``) with ``caption``: its text ended with
    ``line_ending``, as UTF-8. The size refused (caption_changes.refuse_too_big) is of these bytes: a CRLF is two."""
    return (caption.strip() + line_ending(caption, before)).encode("utf-8")


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


def not_to_replace(path: Path) -> str | None:
    """Why the caption file ``path`` may not be replaced: something other than a file is there (a folder named
    img.txt), or it is a file nobody may write (no write permission at all: root may write any file, but a chmod 0444
    still says keep it) or this user may not; None otherwise."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None  # not there (it is created) or not readable: its readers say so
    if stat.S_ISDIR(mode):  # else the write failed naming its temporary file
        return f"caption file '{path}' is a folder, not a text file: move or rename that folder, then write the caption"
    if not stat.S_ISREG(mode):
        return (f"caption file '{path}' is a named pipe, socket or device, not a text file: move it away, then write "
                "the caption")
    if not mode & 0o222 or not os.access(path, os.W_OK):
        return (f"caption file '{path}' is read-only, so it is left as it is: to change it, make it writable "
                f"(chmod u+w '{path}') first")
    return None


def dangling_caption(path: Path) -> str:
    """What a bulk edit says of a caption file ``path`` that is a link to no file: left as it is, since writing would
    replace the link (and an undo then delete it)."""
    return (f"caption file '{path}' is a symbolic link to '{os.readlink(path)}', which does not exist, so it is left "
            "as it is: point the link at a caption file, or delete it")
