"""The process group this trainer belongs to (one process, or several under accelerate launch)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from engine.errors import DbtuiError


class MadeElsewhereError(DbtuiError):
    """What the main process made is missing where another process looks for it."""


def made_by_the_main_process(what: str) -> Callable[[], Any]:
    """A stand-in for the maker of ``what`` in the processes that only read it: they get there after
    the main process made it, so if it is missing their disk is not the main process's."""

    def refuse() -> Any:
        raise MadeElsewhereError(
            f"{what} are missing on this machine after machine 0 made them: its disk is not this one (or it stopped "
            f"early). Copy them to the same path here, or keep them on a disk the machines share."
        )

    return refuse


def main_process_says(accelerator: Any, flag: bool) -> bool:
    """``flag`` as the main process holds it, on every process. A stop reaches the main process alone (a signal, a
    request in the run folder): were each process to act on its own flag, the others would go on into a collective
    that the stopped one never joins, and wait there until they fail or hang."""
    if accelerator.num_processes == 1:
        return flag
    from accelerate.utils import broadcast_object_list

    return bool(broadcast_object_list([flag])[0])


def on_cpu() -> bool:
    import torch

    return not torch.cuda.is_available()


# How long a process waits for the others where they meet. The main process alone makes class images, the first
# run's latent and text caches and a single-file model's conversion while the others wait at a barrier: torch's
# default (10 minutes under NCCL) would fail a first SDXL run with a few hundred class images on every other process.
# A process that fails still ends the run at once: accelerate launch stops the others.
MEETING_TIMEOUT = timedelta(hours=3)


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

    return PartialState(cpu=on_cpu(), timeout=MEETING_TIMEOUT)


def leave_gloo_group() -> None:
    """A run that failed once its processes met (machines' profiles that differ, a set-up error) never reached
    accelerate's ``end_training``, which destroys the process group: its gloo threads then live on into interpreter
    exit, where one aborts the process ("terminate called without an active exception", status 134 for a clean
    error). NCCL's group is left to its own exit: destroying it while another process hangs in a collective could
    hang this one, and accelerate launch ends them all anyway."""
    distributed = sys.modules.get("torch.distributed")
    if distributed is not None and distributed.is_available() and distributed.is_initialized() \
            and distributed.get_backend() == "gloo":
        distributed.destroy_process_group()


def whole_model(accelerator: Any, model: Any) -> Any:
    """``model`` with all its weights on the main process, None on the others (exports and the
    weights of checkpoints). Under FSDP each process holds a shard, so every process must call this:
    the shards are gathered into the main process's host memory and loaded into a copy built on the
    meta device (no second allocation). Otherwise it is the unwrapped model itself."""
    import torch
    from accelerate.utils import DistributedType

    if accelerator.distributed_type != DistributedType.FSDP:
        return accelerator.unwrap_model(model) if accelerator.is_main_process else None
    state = accelerator.get_state_dict(model)  # a collective: the whole state on the main process only
    if not accelerator.is_main_process:
        return None
    inner = accelerator.unwrap_model(model)
    with torch.device("meta"):
        whole = type(inner).from_config(inner.config)
    whole.load_state_dict(state, assign=True)
    return whole
