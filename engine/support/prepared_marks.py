"""The files prepare writes in a prepared folder, by which dbtui knows one (``pics/prepared`` inside its originals)."""

from __future__ import annotations

from pathlib import Path

ORIGIN_RECORD = ".dbtui-prepared-from.json"  # hidden: neither training nor the check reads it
MANIFEST = ".dbtui-prepared.json"  # the copies prepare made: relative path → the original and its settings


def is_prepared_folder(folder: Path) -> bool:
    """Whether ``folder`` holds copies dbtui prepared: not the user's images, which a recursive walk reads. A folder
    that cannot be entered (no execute permission) is not known as one: its readers say why it is not read."""
    try:
        return (folder / ORIGIN_RECORD).is_file() or (folder / MANIFEST).is_file()
    except OSError:
        return False


def prepared_sub_folders(folder: Path) -> list[Path]:
    """The sub-folders of ``folder`` holding copies dbtui prepared (``dbtui dataset prepare pics pics/out``): not the
    user's images, and passed over by a recursive walk."""
    try:
        subs = [sub for sub in folder.iterdir() if sub.is_dir()]
    except OSError:
        return []
    return [sub for sub in subs if is_prepared_folder(sub)]
