"""Aspect-ratio buckets: sizes of about the training area, one per aspect ratio."""

from __future__ import annotations

Bucket = tuple[int, int]  # (width, height)


def standard_buckets(resolution: int, multiple: int = 64, max_ratio: float = 2.5) -> list[Bucket]:
    """Buckets whose area is at most resolution², sides multiples of ``multiple``.

    At 512 this is the familiar list 512x512, 576x448, 640x384, 704x320… and its mirror images,
    limited to aspect ratios up to ``max_ratio``; other resolutions scale it.
    """
    # Below 64 px the step shrinks to the resolution, so that at least the square bucket exists.
    multiple = max(8, min(multiple, resolution))
    area = resolution * resolution
    buckets: set[Bucket] = set()
    width = resolution
    while True:
        height = (area // width) // multiple * multiple
        if height < multiple or width / height > max_ratio:
            break
        buckets.add((width, height))
        buckets.add((height, width))
        width += multiple
    return sorted(buckets, key=lambda b: (b[0] / b[1], b[0]))


def nearest_bucket(width: int, height: int, buckets: list[Bucket]) -> Bucket:
    """The bucket whose aspect ratio is closest to the image's (ties: the larger area)."""
    import math

    ratio = math.log(width / height)
    return min(buckets, key=lambda b: (abs(math.log(b[0] / b[1]) - ratio), -b[0] * b[1]))
