"""Aspect-ratio buckets: sizes of about the training area, one per aspect ratio."""

from __future__ import annotations

from typing import Any

Bucket = tuple[int, int]  # (width, height)


def standard_buckets(resolution: int, multiple: int = 64, max_ratio: float = 2.5) -> list[Bucket]:
    """Buckets whose area is at most resolution², sides multiples of ``multiple``.

    At 512 this is the familiar list 512x512, 576x448, 640x384, 704x320… and its mirror images,
    limited to aspect ratios up to ``max_ratio``; other resolutions scale it. A resolution off the
    step has its square bucket at ``square_side`` (520 at a 64 px step: 512x512).
    """
    multiple = bucket_step(resolution, multiple)
    area = resolution * resolution
    buckets: set[Bucket] = set()
    width = square_side(resolution, multiple)
    while True:
        # Never taller than wide: off the step, the square's side rounded down would leave room for a taller one.
        height = min(width, (area // width) // multiple * multiple)
        if height < multiple or width / height > max_ratio:
            break
        buckets.add((width, height))
        buckets.add((height, width))
        width += multiple
    return sorted(buckets, key=lambda b: (b[0] / b[1], b[0]))


def bucket_step(resolution: int, multiple: int) -> int:
    """The step bucket sides take: the model's, shrunk to the resolution below 64 px so the square bucket exists."""
    return max(8, min(multiple, resolution))


def square_side(resolution: int, multiple: int) -> int:
    """The standard square bucket's side: the resolution rounded down to the bucket step."""
    step = bucket_step(resolution, multiple)
    return resolution // step * step


def rounded_resolution(resolution: int, multiple: int) -> str | None:
    """What to tell a user whose resolution is off the model's size step, as the standard buckets round it; else None."""
    side = square_side(resolution, multiple)
    if side == resolution:
        return None
    return (f"{resolution} is not a multiple of {multiple}, this model's size step, so the standard buckets round it: "
            f"square images train at {side}x{side}, the others at about that area. Set {side} or {side + multiple} "
            "to choose the size yourself")


def resolution_warnings(dataset: Any, multiple: int) -> list[tuple[str, str]]:
    """(key, message) for a profile's ``dataset`` whose standard buckets round its resolution to ``multiple``."""
    if not dataset.bucketing or dataset.buckets:
        return []  # without bucketing images train at the resolution itself; listed buckets are the user's own
    message = rounded_resolution(dataset.resolution, multiple)
    return [("dataset.resolution", message)] if message else []


def nearest_bucket(width: int, height: int, buckets: list[Bucket]) -> Bucket:
    """The bucket whose aspect ratio is closest to the image's (ties: the larger area)."""
    import math

    ratio = math.log(width / height)
    return min(buckets, key=lambda b: (abs(math.log(b[0] / b[1]) - ratio), -b[0] * b[1]))
