"""Where ``dbtui report --output FILE`` may write: refused before the run is read, in words that say what to give."""

from __future__ import annotations

from pathlib import Path

from engine.errors import DbtuiError
from engine.support.folder_access import access_fix


def check_output(output: Path, default_name: str) -> None:
    """``--output``'s FILE refused where it cannot be written: no folder to hold it (the write would be said as the run
    folder gone), a folder, or a folder on its way that this user may not enter (Python 3.11's is_dir raises that)."""
    try:
        folder_there, is_folder = output.parent.is_dir(), output.is_dir()
    except PermissionError as error:
        raise DbtuiError(f"--output: cannot reach {output} ({error.strerror}): {access_fix(output.parent)}; or give a "
                         "file in a folder you can write") from None
    if not folder_there:
        raise DbtuiError(f"--output: there is no folder {output.parent} to write {output.name} in")
    if is_folder:
        raise DbtuiError(f"--output: {output} is a folder; give the file to write, e.g. {output / default_name}")
