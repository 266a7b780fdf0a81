"""The class folder's own pictures, read as a run reads them: one it cannot decode stops the run after the caching
pass, so ``dataset check --profile`` names it as an error, as it names an instance image's."""

from __future__ import annotations

import errno
import functools
import stat
from collections.abc import Callable
from pathlib import Path

from engine.data.images import list_images
from engine.dataset import files
from engine.dataset.image_probe import probe_image, problem_text
from engine.dataset.pool import run_phase
from engine.dataset.report import Finding
from engine.events import Event

# What Path.exists() reads as no such path, not as an error (pathlib's _IGNORED_ERRNOS and _IGNORED_WINERRORS).
_ABSENT_ERRNOS = (errno.ENOENT, errno.ENOTDIR, errno.EBADF, errno.ELOOP)
_ABSENT_WINERRORS = (21, 123, 1921)
FIX = "move it out of the class folder (dbtui generates one in its place), or copy it again"


def class_image_findings(class_dir: Path, count: int | None, *, max_pixels: int | None, workers: int | None,
                         emit: Callable[[Event], None] | None) -> list[Finding]:
    """An error for each of the ``count`` pictures a run takes from ``class_dir`` (all without a count) that it
    cannot read; the generated ones in its sub-folders are dbtui's, written whole."""
    images = [str(path) for path in list_images(class_dir)[:count]]
    probe = functools.partial(probe_image, max_pixels=max_pixels) if max_pixels else probe_image
    probes = run_phase("dataset_check", probe, images, workers=workers, emit=emit,
                       description=f"checking {len(images)} class images")
    return [Finding(p.path, p.error, "error", problem_text(p.error, p.reason), FIX) for p in probes if not p.ok]


def class_images_present(class_dir: Path | str | None) -> int | None:
    """The pictures in ``class_dir`` as the summary counts them; 0 where it is not made yet (the run makes it, and
    every image); None where no class folder was given or a file stands in its place."""
    if not class_dir:
        return None
    try:
        mode = Path(class_dir).stat().st_mode
    except OSError as error:
        if error.errno not in _ABSENT_ERRNOS and getattr(error, "winerror", None) not in _ABSENT_WINERRORS:
            raise
        return 0
    except ValueError:  # a path this system cannot encode
        return 0
    return len(files.list_images(class_dir)) if stat.S_ISDIR(mode) else None
