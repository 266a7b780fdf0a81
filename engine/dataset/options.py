"""The doctor's own settings, checked before any file is touched (the CLI passes them without a profile)."""

from __future__ import annotations

from engine.data.buckets import Bucket, standard_buckets
from engine.data.images import IMAGE_SUFFIXES
from engine.dataset.errors import DatasetError

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


def checked_caption_extension(extension: str) -> str:
    """``extension`` with its leading dot; an image extension is refused, so no caption write can hit a picture."""
    extension = extension if extension.startswith(".") else "." + extension
    stem = extension[1:]
    if not stem or "." in stem or "/" in stem or "\\" in stem or "\x00" in stem or stem.strip() != stem:
        raise DatasetError(f"caption extension '{extension}' is not a file extension: use one like .txt or .caption")
    if extension.lower() in IMAGE_SUFFIXES:
        raise DatasetError(
            f"caption extension '{extension}' is an image extension: captions would be read from (and written over) "
            "your pictures; use one like .txt or .caption"
        )
    return extension


def bucket_list(resolution: int, buckets: list[Bucket] | None) -> list[Bucket]:
    """The given buckets, else the standard ones; below 64 px there are none, so the square alone."""
    return list(buckets or standard_buckets(resolution) or [(resolution, resolution)])
