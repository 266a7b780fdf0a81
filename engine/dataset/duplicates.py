"""Group near-duplicate images by the Hamming distance of their 64-bit perceptual hashes."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

# 64-bit pHash: re-encodes and small edits stay within ~6 bits; different photos differ by ~20-32.
DEFAULT_MAX_DISTANCE = 6
# Rows compared against all hashes at once: the block's table stays at BLOCK_ROWS x n x 8 bytes
# (10,000 images: 80 MB) where the whole n x n table would grow with the square of n.
BLOCK_ROWS = 1024

_BITS_IN_BYTE = np.array([bin(b).count("1") for b in range(256)], dtype=np.uint8)


def _popcount_by_table(xor: np.ndarray) -> np.ndarray:
    """Set bits of each uint64, for numpy before 2.0 (no ``np.bitwise_count``)."""
    return _BITS_IN_BYTE[xor.view(np.uint8)].reshape(*xor.shape, 8).sum(axis=-1, dtype=np.uint8)


_popcount: Callable[[np.ndarray], np.ndarray] = getattr(np, "bitwise_count", _popcount_by_table)


def close_pairs(values: np.ndarray, max_distance: int, block_rows: int) -> list[tuple[int, int]]:
    """Index pairs ``i < j`` whose hashes differ by at most ``max_distance`` bits, a block of rows at a time."""
    pairs: list[tuple[int, int]] = []
    for start in range(0, len(values), block_rows):
        block = values[start:start + block_rows]
        # Only the columns after each block's first row: every pair is met once, from its smaller index.
        rows, cols = np.nonzero(_popcount(block[:, None] ^ values[None, start:]) <= max_distance)
        keep = cols > rows
        pairs.extend(zip((rows[keep] + start).tolist(), (cols[keep] + start).tolist()))
    return pairs


def duplicate_groups(hashes: dict[str, int], max_distance: int = DEFAULT_MAX_DISTANCE) -> list[list[str]]:
    """Groups (each sorted, two or more paths) of images whose hashes are within ``max_distance``.

    Groups are the connected components, so A~B and B~C puts A, B, C together.
    """
    paths = sorted(hashes)
    if len(paths) < 2:
        return []
    parent = list(range(len(paths)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in close_pairs(np.array([hashes[p] for p in paths], dtype=np.uint64), max_distance, BLOCK_ROWS):
        parent[root(i)] = root(j)
    groups: dict[int, list[str]] = {}
    for i, path in enumerate(paths):
        groups.setdefault(root(i), []).append(path)
    return sorted((g for g in groups.values() if len(g) > 1), key=lambda g: g[0])
