"""How many pictures may be decoded at once: the run's decode pass (threads), `dataset check` and `dataset prepare`
(processes) share one memory budget, so a machine of many CPUs and huge photos does not run out of memory in any."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path

from engine.data.images import DataError, image_size
from engine.support.cpus import default_workers

# What the pool's pictures may hold at once: each worker holds one decoded picture and its RGB copy, and a worker a
# CPU on a 64-CPU machine held several GB for 100 MP photos.
DECODE_BUDGET_BYTES = 2 * 1024**3


def decode_workers(paths: Sequence[Path | str], most: int | None = None) -> int:
    """Workers for decoding ``paths``: one a CPU (at most ``most``, where given), fewer where the largest picture (by
    its header) times them would pass ``DECODE_BUDGET_BYTES``; at least one."""
    largest = 0
    for path in paths:
        with contextlib.suppress(DataError):  # its decode says why it cannot be read
            width, height = image_size(Path(path))
            largest = max(largest, width * height * 3 * 2)
    return max(1, min(most or default_workers(), default_workers(), len(paths), DECODE_BUDGET_BYTES // max(largest, 1)))
