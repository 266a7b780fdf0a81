"""The refusal of a run folder the OS would not create or write: why, and what to do instead."""

from __future__ import annotations

import errno
import shlex
from pathlib import Path

from engine.errors import DbtuiError
from engine.runs.file_errors import resume_a_copy
from engine.support.file_in_the_way import file_in_the_way


class RunFolderError(DbtuiError):
    """A run folder that cannot be used as asked."""


def unusable_folder(path: Path, error: OSError, setting: str = "saving.output_dir", *, resumed: bool = False,
                    main_machine: bool = True) -> RunFolderError:
    """The error for a folder the OS would not create or write: why, and what to do.

    ``setting`` is what the user changes to pick another folder. ``resumed``: ``path`` is a run to continue, which no
    setting moves (a resume trains the run where it is): the run folder is to be made writable, or copied elsewhere
    and the copy resumed (file_errors.resume_a_copy, for machine 0 or, not ``main_machine``, another machine).
    """
    def elsewhere(where: str) -> str:
        return resume_a_copy(where, main_machine) if resumed else f"set {setting} to {where}"

    def move(away: Path) -> str:
        # A copy of the run folder would hold what is in its way too: a resume can only move it.
        return "move it out of the run folder" if resumed and path in away.parents else \
            f"move it away or {elsewhere('another folder')}"

    # The file in the way may be inside the run folder (RUN/logs a file), or a folder where a file goes (its log).
    named = Path(error.filename2 or error.filename) if error.filename else None
    inside = named if named and error.errno in (errno.ENOTDIR, errno.EEXIST) else None
    blocker = file_in_the_way(path) or (file_in_the_way(inside) if inside else None)
    if blocker is not None:
        why = f"'{blocker}' is a file, not a folder; {move(blocker)}"
    elif named and error.errno == errno.EISDIR:
        why = f"'{named}' is a folder, where dbtui writes a file; {move(named)}"
    elif error.errno == errno.EROFS:
        why = f"the file system is read-only; {'remount it writable, or ' if resumed else ''}{elsewhere('a folder on a writable disk')}"
    elif error.errno in (errno.EACCES, errno.EPERM):
        mine = f"make it writable by this user (`chmod -R u+w {shlex.quote(str(path))}`), or " if resumed else ""
        why = f"permission denied; {mine}{elsewhere('a folder you can write to')}"
    elif error.errno in (errno.ENOSPC, errno.EDQUOT):
        why = f"the disk is full; free some space or {elsewhere('another disk')}"
    elif error.errno == errno.ENOENT:  # mkdir with parents still failed: a special file system (/proc)
        why = f"this file system does not allow new files or folders here; {elsewhere('a folder on a normal disk')}"
    elif error.errno == errno.ENAMETOOLONG:
        why = f"the path is too long for the file system; {elsewhere('a shorter path' if resumed else 'a shorter one')}"
    else:
        why = f"{error.strerror or error}; {elsewhere('a folder you can write to')}"
    return RunFolderError(f"cannot use the folder {path}: {why}")
