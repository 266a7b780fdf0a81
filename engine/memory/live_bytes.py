"""Counting the bytes of live tensors as operations allocate and free them.

A ``TorchDispatchMode`` sees every operation below autograd, so it sees what the forward pass
saves, what the backward pass allocates and the casts autocast makes. Each output storage it has
not seen is added; a ``weakref.finalize`` on the storage subtracts it when the storage is freed
(torch keeps a storage's Python object alive as long as the storage itself). Under a
``FakeTensorMode`` the storages hold no memory, so a step of a model of any size can be counted
on any machine; on real tensors the same count is what the allocator would have to hold.
"""

from __future__ import annotations

import weakref
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode


def _tensors(value: Any) -> list[torch.Tensor]:
    """The tensors of an operation's arguments or outputs: aten ops take and return tensors, lists and tuples of them,
    and plain values. A walk of its own: torch's general pytree flattening was a tenth of a step's counting."""
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (list, tuple)):
        return [tensor for item in value for tensor in _tensors(item)]
    if isinstance(value, dict):
        return [tensor for item in value.values() for tensor in _tensors(item)]
    return []


class LiveBytes(TorchDispatchMode):
    """Live and peak bytes of the storages created while this mode is active.

    An operation's output counts when its storage is new: not a view of, or the same storage as,
    one of its inputs (storages from before the mode never count). ``weight_storages``: ids of
    parameter storages; a copy made of one (autocast's half-precision weight copies) is counted
    apart, in ``copies``, as well as in the total.
    """

    def __init__(self, weight_storages: set[int] | None = None):
        super().__init__()
        self.weight_storages = weight_storages or set()
        self.live = 0
        self.peak = 0
        self.copies = 0
        self.copies_at_peak = 0
        self.allocations = 0  # a clock: the number of storages created so far
        self.peak_at = 0  # the clock when the peak was reached
        # id(storage) -> (bytes, clock at creation, is a weight copy), for live storages only.
        self.storages: dict[int, tuple[int, int, bool]] = {}

    def _freed(self, key: int) -> None:
        size, _, copy = self.storages.pop(key)
        self.live -= size
        if copy:
            self.copies -= size

    def _add(self, tensor: torch.Tensor, inputs: set[int], copy: bool) -> None:
        storage = tensor.untyped_storage()
        key = id(storage)
        if key in self.storages or key in inputs:
            return  # a view or an in-place result: its storage was there before this operation
        size = storage.nbytes()
        self.allocations += 1
        self.storages[key] = (size, self.allocations, copy)
        self.live += size
        if copy:
            self.copies += size
        weakref.finalize(storage, self._freed, key)

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        inputs = {id(t.untyped_storage()) for t in _tensors((args, kwargs))}
        copy = func is torch.ops.aten._to_copy.default and id(args[0].untyped_storage()) in self.weight_storages
        for item in _tensors(out):
            self._add(item, inputs, copy)
        if self.live > self.peak:
            self.peak, self.peak_at, self.copies_at_peak = self.live, self.allocations, self.copies
        return out

    def alive_at_peak(self, tensor: torch.Tensor) -> int:
        """Bytes of ``tensor``'s storage if it was created here before the peak and is still alive."""
        entry = self.storages.get(id(tensor.untyped_storage()))
        return entry[0] if entry and entry[1] <= self.peak_at else 0


def storage_bytes(tensors: list[torch.Tensor]) -> int:
    """Bytes of the distinct storages behind ``tensors`` (shared storages counted once)."""
    seen: dict[int, int] = {}
    for tensor in tensors:
        storage = tensor.untyped_storage()
        seen[id(storage)] = storage.nbytes()
    return sum(seen.values())
