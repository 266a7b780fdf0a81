"""Group near-duplicate images by the Hamming distance of their 64-bit perceptual hashes."""

from __future__ import annotations

import numpy as np

# 64-bit pHash: re-encodes and small edits stay within ~6 bits; different photos differ by ~20-32.
DEFAULT_MAX_DISTANCE = 6


def duplicate_groups(hashes: dict[str, int], max_distance: int = DEFAULT_MAX_DISTANCE) -> list[list[str]]:
    """Groups (each sorted, two or more paths) of images whose hashes are within ``max_distance``.

    All pairs are compared at once with numpy (1,000 images: a million pairs in milliseconds);
    groups are the connected components, so A~B and B~C puts A, B, C together.
    """
    paths = sorted(hashes)
    if len(paths) < 2:
        return []
    values = np.array([hashes[p] for p in paths], dtype=np.uint64)
    xor = values[:, None] ^ values[None, :]
    distance = np.unpackbits(xor.view(np.uint8).reshape(len(paths), len(paths), 8), axis=2).sum(axis=2)
    close = distance <= max_distance
    parent = list(range(len(paths)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in zip(*np.nonzero(np.triu(close, k=1))):
        parent[root(int(i))] = root(int(j))
    groups: dict[int, list[str]] = {}
    for i, path in enumerate(paths):
        groups.setdefault(root(i), []).append(path)
    return sorted((g for g in groups.values() if len(g) > 1), key=lambda g: g[0])
