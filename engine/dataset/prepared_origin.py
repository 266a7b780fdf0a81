"""Where a folder's prepared copies go, and where a prepared folder's copies came from.

Prepare records the originals' folder in the prepared folder (``ORIGIN_RECORD``). Preparing that folder again then
means preparing its originals again into it, which picks up the images added to them since, rather than cropping
and resizing the copies a second time into "pics-prepared-prepared". Only a new (or empty) folder, or one holding
copies of that same folder, is marked so: marking the user's own images as copies would refuse to prepare them and
make the wizard prepare the other folder into them. A folder an earlier dbtui prepared before it wrote the record is
known by its manifest instead, when it holds nothing but the copies of one folder.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from engine.data.images import IMAGE_SUFFIXES
from engine.dataset.errors import DatasetError
from engine.dataset.prepare_captions import write_prepared_file
from engine.support.prepared_marks import MANIFEST, ORIGIN_RECORD
from engine.support.json_file import read_json_object


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


def unrecordable(dst: Path, src: Path, manifest: dict) -> str:
    """Why ``dst`` (before it is made; ``manifest`` its copies' entries) is not to be marked as ``src``'s prepared
    folder, or "" when it is: new, or holding (hidden files aside) only copies prepared from ``src`` and their
    captions, as a folder an earlier dbtui prepared before folders were marked."""
    recorded = _recorded_source(dst)
    if recorded is not None:
        if os.path.realpath(recorded) == os.path.realpath(src):
            return ""
        return (f"{dst} holds copies prepared from {recorded}, and still says so (not that they come from {src}): "
                f"prepare {src} into a folder of its own to keep the two apart")
    sources = [e["source"] for e in manifest.values() if isinstance(e, dict) and isinstance(e.get("source"), str)]
    try:
        names = [entry.name for entry in os.scandir(dst) if not entry.name.startswith(".")]
    except FileNotFoundError:
        return ""
    except OSError:  # not a folder, or unreadable: said by the steps that follow
        names = None
    theirs = all(Path(s).is_relative_to(os.path.realpath(src)) for s in sources)
    if names is not None and theirs and all(_a_copy(name, manifest) for name in names):
        return ""
    return (f"{dst} already held files that are not copies prepared from {src}, so it is not marked as {src}'s "
            f"prepared folder: it can still be prepared as a folder of its own; prepare into a new folder to have "
            f"one that preparing it again updates from {src}")


def _a_copy(name: str, manifest: dict) -> bool:
    """Whether the entry ``name`` of the prepared folder is (or holds) the manifest's copies, or a copy's caption."""
    keys = [Path(key) for key in manifest]
    if any(key.parts[0] == name and len(key.parts) > 1 for key in keys) or any(str(key) == name for key in keys):
        return True
    return Path(name).suffix.lower() not in IMAGE_SUFFIXES and any(str(key.with_suffix("")) == Path(name).stem
                                                                   for key in keys)


def prepared_from(folder: Path | str) -> Path | None:
    """The originals' folder of ``folder``'s copies, when dbtui prepared them and that folder is still there."""
    source = _recorded_source(Path(folder)) or _unmarked_source(Path(folder))
    if source is None or not os.path.isdir(source) or os.path.realpath(source) == os.path.realpath(folder):
        return None
    return Path(source)


def _recorded_source(folder: Path) -> str | None:
    """The originals' folder ``folder``'s record names, whether or not it is still there."""
    source = read_json_object(folder / ORIGIN_RECORD).get("source")
    return source if isinstance(source, str) else None


def _unmarked_source(folder: Path) -> str | None:
    """The originals' folder of copies prepared before prepared folders were marked: the one folder every copy in
    the manifest came from (each copy keeps its original's path below it), when ``folder`` holds nothing else."""
    manifest = read_json_object(folder / MANIFEST)
    origins = {_original_folder(key, entry["source"]) for key, entry in manifest.items()
               if isinstance(entry, dict) and isinstance(entry.get("source"), str)}
    if len(origins) != 1 or None in origins:
        return None
    try:
        names = [entry.name for entry in os.scandir(folder) if not entry.name.startswith(".")]
    except OSError:
        return None
    return origins.pop() if all(_a_copy(name, manifest) for name in names) else None


def _original_folder(copy: str, original: str) -> str | None:
    """The folder prepared, from a copy's path in it and its original's: the original's, as many levels up."""
    depth = len(Path(copy).parts)
    source = Path(original)
    return str(source.parents[depth - 1]) if 0 < depth < len(source.parts) else None


def refuse_copies_of_copies(src: Path) -> None:
    """Refuse to prepare dbtui's own copies while their originals are there: they would be cropped and resized twice."""
    origin = prepared_from(src)
    if origin is not None:
        raise DatasetError(f"{src} holds copies dbtui prepared from {origin}: preparing them again would crop and "
                           f"resize them twice; prepare {origin} instead (into {src} to update these copies)")


def prepare_paths(folder: Path | str) -> tuple[Path, Path]:
    """(the originals, where their copies go) when Prepare is asked for ``folder``: on copies dbtui prepared, their
    originals again into them (and the images added since), never copies of the copies; else ``folder`` beside it."""
    origin = prepared_from(folder)
    return (origin, Path(folder)) if origin is not None else (Path(folder), folder_beside(folder))
