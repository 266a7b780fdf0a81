"""The class folder's own pictures, read as a run reads them: one it cannot decode stops the run after the caching
pass, so ``dataset check --profile`` names it as an error, as it names an instance image's."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

from engine.data.decode_budget import decode_workers
from engine.dataset import files
from engine.dataset.errors import DatasetError, FolderAccessError
from engine.dataset.image_findings import error_fix
from engine.dataset.image_probe import probe_image, problem_text
from engine.dataset.pool import run_phase
from engine.dataset.report import Finding
from engine.events import Event

FIX = "move it out of the class folder (dbtui generates one in its place), or copy it again"
ANOTHER_FOLDER = "give another class folder (dbtui generates the class images there)"


def class_folder_findings(class_dir: Path | str | None) -> list[Finding]:
    """An error where the class folder is there but cannot be listed or entered: the run stopped on it after the model
    had loaded, blaming its run folder's permissions, while the check stopped, blaming the instance folder."""
    if not class_dir or not _is_folder(Path(class_dir)):
        return []
    try:
        files.scan_folder(class_dir)
    except FolderAccessError as error:  # the folder in its column, the chmod in What to do: each once
        return [Finding(str(class_dir), "unreadable", "error", f"the class folder {error.what}",
                        f"{error.fix}, or {ANOTHER_FOLDER}")]
    except DatasetError as error:
        return [Finding(str(class_dir), "unreadable", "error", f"the class folder: {error}",
                        f"make it readable by you, or {ANOTHER_FOLDER}")]
    return []


def class_image_findings(class_dir: Path, count: int | None, *, max_pixels: int | None, workers: int | None,
                         emit: Callable[[Event], None] | None) -> list[Finding]:
    """An error for each of the ``count`` pictures a run takes from ``class_dir`` (all without a count) that it
    cannot read; the generated ones in its sub-folders are dbtui's, written whole."""
    images = [str(path) for path in files.list_images(class_dir)[:count]]
    probe = functools.partial(probe_image, max_pixels=max_pixels) if max_pixels else probe_image
    probes = run_phase("dataset_check", probe, images, workers=decode_workers(images, workers), emit=emit,
                       description=f"checking {len(images)} class images")
    return [Finding(p.path, p.error, "error", problem_text(p.error, p.reason), error_fix(p.error, p.path, FIX))
            for p in probes if not p.ok]


def class_images_present(class_dir: Path | str | None) -> int | None:
    """The pictures in ``class_dir`` as the summary counts them; 0 where it is not made yet (the run makes it, and
    every image); None where no class folder was given or a file stands in its place."""
    if not class_dir:
        return None
    path = Path(class_dir)
    if _is_folder(path):
        try:
            return len(files.list_images(path))
        except DatasetError:  # class_folder_findings says why
            return None
    return None if path.exists() else 0


def _is_folder(path: Path) -> bool:
    """``path`` is a folder, or may be one behind a folder above it that lets this user not in (Python 3.11's is_dir
    raised that as a crash): reading it then says which folder to open."""
    try:
        return path.is_dir()
    except PermissionError:
        return True
