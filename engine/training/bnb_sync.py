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
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch

_skipping = threading.local()  # per thread: the fused step runs on autograd's thread, and streams are per thread
_installed = threading.Lock()


def _skippable(optimizer: torch.optim.Optimizer, device: torch.device) -> bool:
    """Whether the wait after each weight orders nothing here: a bitsandbytes optimizer that is not
    paged, of a release that waits through ``sync_gpu`` (0.47 on; earlier ones keep their wait),
    stepping weights on an NVIDIA GPU (bitsandbytes keeps the wait on ROCm) while torch works on its
    default stream."""
    module = sys.modules.get("bitsandbytes.optim.optimizer")
    if module is None or not callable(getattr(module, "sync_gpu", None)):
        return False
    if not isinstance(optimizer, module.Optimizer8bit) or optimizer.is_paged:
        return False
    if device.type != "cuda" or torch.version.hip is not None:
        return False
    return torch.cuda.current_stream(device) == torch.cuda.default_stream(device)


def _waits_unless_skipped(module: Any) -> None:
    """bitsandbytes' ``sync_gpu`` wrapped, once per process, to wait unless this thread skips the wait."""
    with _installed:
        waits: Callable[[torch.Tensor], None] = module.sync_gpu
        if getattr(waits, "dbtui_wrapped", False):
            return

        def sync_gpu(tensor: torch.Tensor) -> None:
            if not getattr(_skipping, "on", False):
                waits(tensor)

        sync_gpu.dbtui_wrapped = True  # type: ignore[attr-defined]
        module.sync_gpu = sync_gpu


@contextmanager
def without_per_weight_wait(optimizer: torch.optim.Optimizer, device: torch.device) -> Iterator[None]:
    """Inside, on this thread, ``optimizer.step()`` waits for no GPU work after each weight where that wait
    orders nothing."""
    if not _skippable(optimizer, device):
        yield
        return
    _waits_unless_skipped(sys.modules["bitsandbytes.optim.optimizer"])
    before = getattr(_skipping, "on", False)
    _skipping.on = True
    try:
        yield
    finally:
        _skipping.on = before
