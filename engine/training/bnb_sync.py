"""One weight's step of a bitsandbytes 8-bit optimizer without waiting for the whole GPU.

Written by hand because no release does it yet: bitsandbytes (0.50) calls ``torch.cuda.synchronize()``
after every weight it steps (``sync_gpu`` in ``Optimizer8bit.step``), which only its paged
optimizers need (their state moves asynchronously). Each wait leaves the GPU idle while the CPU
queues the next weight's kernels, and stepped from the backward pass (``optimizer.fused_backward``)
it stops the backward pass too. One step of SD1.5's 686 weights took 154 ms with the waits and 123
without on an H200, with the same weights bit for bit (bench/bnb_wait.py). bitsandbytes pull
request #2050 removes the wait for optimizers that are not paged.

Its kernels run on CUDA's default stream whatever torch's current stream is, so they keep their
order with torch's work only while torch works on the default stream too; elsewhere the wait stays.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import torch


def _skippable(optimizer: torch.optim.Optimizer, device: torch.device) -> bool:
    """Whether the wait after each weight orders nothing here: a bitsandbytes optimizer that is not
    paged, stepping weights on a CUDA device while torch works on its default stream."""
    module = sys.modules.get("bitsandbytes.optim.optimizer")
    if module is None or not isinstance(optimizer, module.Optimizer8bit) or optimizer.is_paged:
        return False
    return device.type == "cuda" and torch.cuda.current_stream(device) == torch.cuda.default_stream(device)


def _no_wait(tensor: torch.Tensor) -> None:
    """Stands in for bitsandbytes' ``sync_gpu`` (see the module docstring)."""


@contextmanager
def without_per_weight_wait(optimizer: torch.optim.Optimizer, device: torch.device) -> Iterator[None]:
    """Inside, ``optimizer.step()`` waits for no GPU work after each weight where that wait orders nothing."""
    if not _skippable(optimizer, device):
        yield
        return
    module = sys.modules["bitsandbytes.optim.optimizer"]
    waits = module.sync_gpu
    module.sync_gpu = _no_wait
    try:
        yield
    finally:
        module.sync_gpu = waits
