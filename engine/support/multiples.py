"""The sizes nearest a side that is off a size step, as advice names them."""

from __future__ import annotations


def nearest_multiples(side: int, step: int) -> tuple[int, ...]:
    """The multiples of ``step`` just below and above ``side`` (none below ``step``)."""
    below = side - side % step
    return tuple(n for n in (below, below + step) if n >= step)


def nearest_text(side: int, step: int) -> str:
    """``e.g. 64 or 80``: what to write instead of ``side``."""
    return "e.g. " + " or ".join(map(str, nearest_multiples(side, step)))
