"""Why the wizard could not save a profile where the user asked, in words that say what to do."""

from __future__ import annotations

import errno
from pathlib import Path


def save_failure(path: Path, error: OSError) -> str:
    """Why ``path`` could not be saved, naming it (not save_profile's temporary file beside it). Save_profile's own
    refusals (a folder, a NUL) say what to do already, as does a name or path too long; any other failure is its
    folder's, worded as a run folder's."""
    if error.errno in (errno.EISDIR, errno.EINVAL):
        return f"Cannot write {path}: {error.strerror}"
    if error.errno == errno.ENAMETOOLONG:  # the name's or the whole path's fault, not the folder's
        return f"Cannot write {path}: the file system takes no file name or path this long; give a shorter one"
    from engine.runs.folder import unusable_folder

    return f"Cannot write {path}: {unusable_folder(path.parent, error, 'the Save as path')}"
