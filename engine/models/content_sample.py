"""A cheap fingerprint of a large file's bytes: a hash of a few blocks spread over it.

A conversion's note knew its file by path, size and modification time, and another file copied over it with
``cp -p`` (the same size, its time kept) passed for it: its old conversion was trained on. The size and the time
alone tell nothing of the bytes; every block of another fine-tune of the same model differs, so a few blocks spread
over the file tell it apart, in milliseconds where a hash of the whole file takes minutes.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

BLOCK = 64 * 1024
BLOCKS = 16  # the header, the end, and 14 between: 1 MiB read of a file of gigabytes


def content_sample(path: Path) -> str:
    """The sha256 of BLOCKS blocks of ``path`` at evenly spread offsets (of all of it, where it is smaller)."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        size = file.seek(0, 2)
        last = max(size - BLOCK, 0)
        for offset in sorted({last * index // (BLOCKS - 1) for index in range(BLOCKS)}):
            file.seek(offset)
            digest.update(file.read(BLOCK))
    return digest.hexdigest()
