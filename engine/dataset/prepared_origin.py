"""Where a folder's prepared copies go, and where a prepared folder's copies came from.

Prepare records the originals' folder in the prepared folder (``ORIGIN_RECORD``). Preparing that folder again then
means preparing its originals again into it, which picks up the images added to them since, rather than cropping
and resizing the copies a second time into "pics-prepared-prepared".
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from engine.dataset.errors import DatasetError
from engine.dataset.prepare_captions import write_prepared_file

ORIGIN_RECORD = ".dbtui-prepared-from.json"  # hidden: neither training nor the check reads it


def folder_beside(src: Path | str) -> Path:
    """Where the wizard writes a folder's prepared copies: beside it, named after it ("pics" → "pics-prepared")."""
    source = Path(os.path.abspath(src))
    if source.parent == source:
        raise DatasetError(f"{source} is the root of the file system: put the images in a folder of their own")
    return source.with_name(f"{source.name}-prepared")


def record_origin(dst: Path, src: Path) -> None:
    """Write in ``dst`` that its copies are prepared from ``src`` (untouched when it says so already)."""
    text = json.dumps({"source": os.path.abspath(src)}, indent=1)
    record = dst / ORIGIN_RECORD
    try:
        if record.read_text(encoding="utf-8") == text:
            return
    except (OSError, ValueError):
        pass
    write_prepared_file(record, text)


def prepared_from(folder: Path | str) -> Path | None:
    """The originals' folder of ``folder``'s copies, when dbtui prepared them and that folder is still there."""
    try:
        data = json.loads((Path(folder) / ORIGIN_RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    source = data.get("source") if isinstance(data, dict) else None
    if not isinstance(source, str) or not os.path.isdir(source) or os.path.realpath(source) == os.path.realpath(folder):
        return None
    return Path(source)


def refuse_copies_of_copies(src: Path) -> None:
    """Refuse to prepare dbtui's own copies while their originals are there: they would be cropped and resized twice."""
    origin = prepared_from(src)
    if origin is not None:
        raise DatasetError(f"{src} holds copies dbtui prepared from {origin}: preparing them again would crop and "
                           f"resize them twice; prepare {origin} instead (into {src} to update these copies)")
