"""Where the real-size random-weight built-ins (SDXL, Flux) are made, and the memory given back after."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

ROOM = 1.2  # the free GPU memory a build needs over its weights' bytes: the allocator's rounding and the save's buffers


@contextlib.contextmanager
def build_device(weight_bytes: int) -> Iterator[str]:
    """Yields "cuda" when the GPU has room for ``weight_bytes`` (a build takes seconds there), else "cpu"
    (minutes, and as much RAM). On leaving, what the build held goes and the GPU's cache is given back,
    so that the run which asked for the model starts with the card empty."""
    import torch

    fits = torch.cuda.is_available() and torch.cuda.mem_get_info()[0] > weight_bytes * ROOM
    try:
        yield "cuda" if fits else "cpu"
    finally:
        gc.collect()  # diffusers' modules hold themselves in reference cycles
        if fits:
            torch.cuda.empty_cache()
