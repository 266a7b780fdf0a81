"""The files prepare writes in a prepared folder, by which dbtui knows one (``pics/prepared`` inside its originals)."""

from __future__ import annotations

from pathlib import Path

ORIGIN_RECORD = ".dbtui-prepared-from.json"  # hidden: neither training nor the check reads it
MANIFEST = ".dbtui-prepared.json"  # the copies prepare made: relative path → the original and its settings


def is_prepared_folder(folder: Path) -> bool:
    """Whether ``folder`` holds copies dbtui prepared: not the user's images, which a recursive walk reads."""
    return (folder / ORIGIN_RECORD).is_file() or (folder / MANIFEST).is_file()
