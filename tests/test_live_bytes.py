"""LiveBytes counts the storages an operation creates, whatever shape its arguments and outputs take."""

from __future__ import annotations

import torch

from engine.memory.live_bytes import LiveBytes, _tensors


def test_the_tensors_of_nested_arguments_are_found_and_plain_values_left_out() -> None:
    a, b, c = torch.zeros(1), torch.zeros(2), torch.zeros(3)
    assert [id(t) for t in _tensors(((a, [b, 2.0, None]), {"out": c, "dim": 0}, torch.float16))] == [id(a), id(b), id(c)]


def test_an_operation_returning_a_list_counts_each_new_storage_and_a_view_none() -> None:
    weights = [torch.zeros(4), torch.zeros(8)]
    with LiveBytes() as tracker:
        summed = torch._foreach_add(weights, 1.0)  # a list of two new tensors
        halves = summed[1].split(4)  # views of a storage already counted
        assert tracker.live == 12 * 4 and len(halves) == 2
        written = torch.add(weights[0], 1.0, out=torch.empty(4))  # the out= tensor, a keyword argument, is new once
    assert tracker.peak == 16 * 4 and written.shape == (4,)
