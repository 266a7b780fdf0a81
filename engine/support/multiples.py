"""The sizes nearest a side that is off a size step, as advice names them."""

from __future__ import annotations


def nearest_multiples(side: int, step: int, least: int = 0) -> tuple[int, ...]:
    """The multiples of ``step`` just below and above ``side`` (none below ``step`` or ``least``); the first one of at
    least ``least`` where both are under it."""
    below = side - side % step
    return tuple(n for n in (below, below + step) if n >= max(step, least)) or (-(-least // step) * step,)


def nearest_text(side: int, step: int) -> str:
    """``e.g. 64 or 80``: what to write instead of ``side``."""
    return "e.g. " + " or ".join(map(str, nearest_multiples(side, step)))


def nearest_size_text(size: tuple[int, ...], step: int, least: int = 0) -> str:
    """What to write instead of a resolution or a bucket: each side's nearest multiples (a bucket's two may both be
    off), none under ``least`` (a bucket's 16 side was told as it was, and refused again)."""
    if len(size) == 1:
        return nearest_text(size[0], step)
    return "e.g. " + "x".join("/".join(map(str, nearest_multiples(side, step, least))) if side % step or side < least
                              else str(side) for side in size)
