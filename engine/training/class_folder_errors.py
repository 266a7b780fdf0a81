"""The machine's file errors while class images are written into a concept's class folder: a read-only or full disk,
a folder the user cannot write, a file standing where the generated folder goes. The class folder is the user's, often
on another disk than the run, so these name it and its key, not the run folder (``engine.runs.file_errors``)."""

from __future__ import annotations

import contextlib
import errno
import os
import shlex
from collections.abc import Iterator
from pathlib import Path

from engine.errors import DbtuiError

AGAIN = "then start the run again"


class ClassFolderError(DbtuiError):
    """Class images cannot be written into a class folder; ``advice`` says what to do."""

    def __init__(self, message: str, advice: str):
        super().__init__(message)
        self.advice = advice


def class_folder_error(error: OSError, concept: int, folder: Path) -> ClassFolderError | None:
    """The ClassFolderError for ``error``, met writing into ``folder`` (concept ``concept``'s class folder); None when it
    is not one of the machine's."""
    key, shown, quoted = f"concepts.{concept}.class_dir", f"'{folder}'", shlex.quote(str(folder))
    elsewhere = f"set {key} to a folder on another disk"
    code = error.errno
    if code in (errno.ENOTDIR, errno.EEXIST, errno.EISDIR):
        # A rename names its target second: that is what stands in the way.
        in_the_way = _in_the_way(Path(error.filename2 or error.filename)) if error.filename else folder
        return ClassFolderError(f"{key}: '{in_the_way}' is in the way of the class images in {shown}: a file stands where "
                                "dbtui makes a folder, or a folder where it writes an image",
                                f"move it away, or set {key} to another folder; {AGAIN}")
    if code in (errno.EACCES, errno.EPERM):
        return ClassFolderError(f"{key}: permission denied writing class images into {shown}",
                                f"make it writable by this user (`ls -ld {quoted}`, `chmod u+w`), or set {key} to a folder "
                                f"you can write; {AGAIN}")
    if code in (errno.ENOSPC, errno.EDQUOT):
        return ClassFolderError(f"{key}: the disk holding {shown} is full (or the quota used up)",
                                f"free some space (`df -h {quoted}`), {elsewhere}, or lower concepts.{concept}.num_class_images; "
                                f"{AGAIN}")
    if code == errno.EROFS:
        return ClassFolderError(f"{key}: the file system holding {shown} is read-only, so the missing class images cannot "
                                "be generated into it",
                                f"{elsewhere} (a writable one), remount this one writable, or put num_class_images images of "
                                f"your own in it (a read-only class folder that holds enough is fine); {AGAIN}")
    if code == errno.ENOENT:
        # The generated folder, or a file being written in it, was removed meanwhile: by hand, or by another run
        # generating into this class folder at the same time.
        return ClassFolderError(f"{key}: a class image being written into {shown} was removed meanwhile, or its folder",
                                f"let one run at a time generate into this class folder, and leave its generated-… "
                                f"folders alone while it does; {AGAIN}")
    if code == errno.EIO:
        return ClassFolderError(f"{key}: the disk reported an input/output error writing class images into {shown}",
                                f"the disk may be failing (see `dmesg`); {elsewhere}; {AGAIN}")
    return None


def _in_the_way(path: Path) -> Path:
    """The first of ``path`` and the folders above it that is there but not a folder ('a.png' of 'a.png/sub/generated-…');
    ``path`` itself where it is a folder, in the way of a file."""
    for place in [*reversed(path.parents), path]:
        if os.path.lexists(place) and not place.is_dir():
            return place
    return path


@contextlib.contextmanager
def said_of_class_folder(concept: int, folder: Path) -> Iterator[None]:
    """Inside, an OSError of the machine's becomes its ClassFolderError; any other stays as it is (a bug)."""
    try:
        yield
    except OSError as error:
        said = class_folder_error(error, concept, folder)
        if said is None:
            raise
        raise said from error
