"""The process group this trainer belongs to (one process, or several under accelerate launch)."""

from __future__ import annotations

from typing import Any


def on_cpu() -> bool:
    import torch

    return not torch.cuda.is_available()


def process_state() -> Any:
    """accelerate's shared state. Without a GPU it must be told to use the CPU, or processes
    started by ``accelerate launch`` would each believe they are alone (DistributedType.NO)."""
    import torch
    from accelerate import PartialState

    if torch.distributed.is_available():
        # This module takes ``group.WORLD`` as a default argument when imported. Imported after
        # the group exists (DDP imports it, through torch._dynamo), it holds the group past
        # destroy_process_group: the group's gloo threads then live on into interpreter exit,
        # where one that frees a collective's tensors aborts the process ("terminate called
        # without an active exception"). Imported first, its defaults are None.
        import torch.distributed.nn.functional  # noqa: F401

    return PartialState(cpu=on_cpu())
