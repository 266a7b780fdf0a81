"""The doctor's own settings, checked before any file is touched (the CLI passes them without a profile)."""

from __future__ import annotations

from engine.data.buckets import Bucket, standard_buckets
from engine.profile.fields import caption_extension
from engine.dataset.errors import DatasetError, WorkersError

# The profile's limits (engine/profile/schema.py: dataset.resolution), so a value the doctor
# accepts is one a profile can train with.
MIN_RESOLUTION, MAX_RESOLUTION, RESOLUTION_STEP = 32, 4096, 8


def checked_resolution(resolution: int) -> int:
    if not MIN_RESOLUTION <= resolution <= MAX_RESOLUTION or resolution % RESOLUTION_STEP:
        raise DatasetError(
            f"resolution {resolution} is not usable: give a size in pixels from {MIN_RESOLUTION} to "
            f"{MAX_RESOLUTION}, a multiple of {RESOLUTION_STEP} (512 for SD 1.x, 768 for SD 2-v, 1024 for SDXL)"
        )
    return resolution


def checked_workers(workers: int | None) -> int | None:
    """``workers`` as given, refused below 1 as the CLI's --workers is: a negative number ran one process unsaid."""
    if workers is not None and workers < 1:
        raise WorkersError(f"workers {workers} is not usable: give 1 or more worker processes, or None to size them "
                           "by the CPUs and the pictures (engine.data.decode_budget)")
    return workers


def checked_caption_extension(extension: str) -> str:
    """``extension`` with its leading dot; an image extension is refused, so no caption write can hit a picture."""
    try:
        return caption_extension(extension)
    except ValueError as error:
        raise DatasetError(f"caption extension {error}") from None


def bucket_list(resolution: int, buckets: list[Bucket] | None, size_multiple: int = 64) -> list[Bucket]:
    """The given buckets, else the standard ones stepping by the model's ``size_multiple``
    (``engine.model_info.size_multiple``), the same the trainer will use; else the square alone."""
    return list(buckets or standard_buckets(resolution, multiple=size_multiple) or [(resolution, resolution)])
