"""Near-duplicate grouping: the same groups as comparing every pair at once, in memory that grows with n, not n²."""

from __future__ import annotations

import random
import tracemalloc

import numpy as np
import pytest

from engine.dataset import duplicates
from engine.dataset.duplicates import duplicate_groups


def _all_pairs_groups(hashes: dict[str, int], max_distance: int) -> list[list[str]]:
    """The grouping as first written: the whole n x n distance table, then connected components."""
    paths = sorted(hashes)
    values = np.array([hashes[p] for p in paths], dtype=np.uint64)
    xor = values[:, None] ^ values[None, :]
    close = np.unpackbits(xor.view(np.uint8).reshape(len(paths), len(paths), 8), axis=2).sum(axis=2) <= max_distance
    groups: list[set[str]] = []
    for i, j in zip(*np.nonzero(np.triu(close, k=1))):
        pair = {paths[i], paths[j]}
        touching = [g for g in groups if g & pair]
        merged = pair.union(*touching)
        groups = [g for g in groups if not g & pair] + [merged]
    return sorted((sorted(g) for g in groups), key=lambda g: g[0])


def _hashes_with_planted_copies(count: int, seed: int) -> dict[str, int]:
    """Random hashes, a fifth of them near copies (a few flipped bits) of another, some in chains."""
    rng = random.Random(seed)
    values: list[int] = []
    for _ in range(count):
        if values and rng.random() < 0.2:
            flips = rng.sample(range(64), rng.randint(0, 8))
            values.append(rng.choice(values) ^ sum(1 << b for b in flips))
        else:
            values.append(rng.getrandbits(64))
    return {f"img-{i:05}.png": v for i, v in enumerate(values)}


@pytest.mark.parametrize("block_rows", [1, 7, 64, duplicates.BLOCK_ROWS])
@pytest.mark.parametrize("max_distance", [0, 3, 6])
def test_blocks_find_the_same_groups_as_all_pairs_at_once(monkeypatch: pytest.MonkeyPatch, block_rows: int,
                                                          max_distance: int) -> None:
    monkeypatch.setattr(duplicates, "BLOCK_ROWS", block_rows)
    hashes = _hashes_with_planted_copies(300, seed=block_rows * 10 + max_distance)
    expected = _all_pairs_groups(hashes, max_distance)
    assert expected, "the planted copies make groups"
    assert duplicate_groups(hashes, max_distance) == expected


def test_bit_count_table_matches_numpy() -> None:
    values = np.array([random.Random(1).getrandbits(64) for _ in range(500)] + [0, 2**64 - 1], dtype=np.uint64)
    expected = [bin(int(v)).count("1") for v in values]
    assert duplicates._popcount_by_table(values).tolist() == expected
    assert duplicates._popcount(values).tolist() == expected


def test_memory_stays_far_below_the_whole_distance_table() -> None:
    count = 4096
    hashes = _hashes_with_planted_copies(count, seed=7)
    tracemalloc.start()
    try:
        duplicate_groups(hashes)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # The n x n uint64 table alone is 134 MB here (and was unpacked to 8 times that); a block of rows is ~40 MB.
    assert peak < count * count * 8 / 3
