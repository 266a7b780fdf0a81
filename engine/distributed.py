"""The process group this trainer belongs to (one process, or several under accelerate launch)."""

from __future__ import annotations

from typing import Any


def on_cpu() -> bool:
    import torch

    return not torch.cuda.is_available()


def process_state() -> Any:
    """accelerate's shared state. Without a GPU it must be told to use the CPU, or processes
    started by ``accelerate launch`` would each believe they are alone (DistributedType.NO)."""
    from accelerate import PartialState

    return PartialState(cpu=on_cpu())
