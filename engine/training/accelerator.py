"""The accelerate Accelerator a run trains under: precision, trackers, DDP settings, sharding."""

from __future__ import annotations

import gc
import importlib.util
from pathlib import Path
from typing import Any

from engine.errors import DbtuiError


class TrackerUnavailableError(DbtuiError):
    """The chosen experiment tracker is not installed."""


class ShardingUnavailableError(DbtuiError):
    """launch.sharding asks for what this machine or this start cannot do."""


def check_sharding_installed(profile: Any) -> None:
    """Refuse DeepSpeed sharding where deepspeed is not installed."""
    from engine.profile.library_problems import missing_library_problems

    for problem in missing_library_problems(profile):
        if problem.key == "launch.sharding":  # the others are the trainer's to refuse, each with its own error
            raise ShardingUnavailableError(f"{problem.key} = {problem.message}")


def free_memory(accelerator: Any) -> None:
    """accelerate's ``free_memory`` (its wrappers dropped, the GPU's cached blocks handed back) without its walk of every
    object: it runs a full garbage collection before it lets go of what it holds, so that collection frees none of it
    (about 1 KB of other garbage at the end of a tiny run) while it walks half a million objects, 0.9 s on 2 loaded cores.
    Frozen, they are skipped."""
    gc.freeze()
    try:
        accelerator.free_memory()
    finally:
        gc.unfreeze()


def end_training(accelerator: Any) -> None:
    """accelerate's ``end_training`` after ``free_memory``: a process group is torn down only once no wrapper holds it."""
    free_memory(accelerator)
    accelerator.end_training()


def make_accelerator(profile: Any, precision: str, run_dir: Path) -> Any:
    """An Accelerator for ``profile`` at the (already checked) mixed ``precision``."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState
    from accelerate.utils import GradientAccumulationPlugin

    from engine.training.bitsandbytes_check import check_bitsandbytes_loads
    from engine.training.distributed import on_cpu, process_state
    from engine.training.same_profile import check_same_profile

    log_with = None if profile.logging.logger == "none" else profile.logging.logger
    if log_with:
        module = "tensorboard" if log_with == "tensorboard" else "wandb"
        if importlib.util.find_spec(module) is None:
            raise TrackerUnavailableError(
                f"logging.logger = \"{log_with}\" needs {module}: pip install {module}, or set logger = \"none\""
            )
    # accelerate keeps one state per process, fixed by its first Accelerator; a later run in the
    # same process (a second fit test, say) may ask for another precision. The process group
    # (PartialState) stays. transformers' Trainer resets it the same way.
    state = process_state()  # the process group, joined the way engine.training.distributed says
    check_same_profile(profile, state.num_processes)
    AcceleratorState._reset_state()
    from accelerate.utils import AutocastKwargs

    # Autocast's cache would keep a half-precision copy of every trained fp32 weight until the forward
    # pass ends; each is used once a pass, and the backward pass keeps what it needs, so without the cache
    # each copy goes as soon as it has been used. With gradient checkpointing nothing else holds them:
    # sdxl-person.toml's step 16.8 GB with the cache, 12.5 without, by the meter.
    handlers: list[Any] = [AutocastKwargs(cache_enabled=False)]
    if profile.training.train_text_encoder:
        from accelerate.utils import DistributedDataParallelKwargs

        # A text encoder read below its last layer (clip_skip, and always SDXL's first) leaves that
        # layer out of the loss: DDP must expect it. The model's family is not known yet here.
        handlers.append(DistributedDataParallelKwargs(find_unused_parameters=True))
    check_sharding_installed(profile)
    # Here, once the process has its GPU (loading bitsandbytes may touch CUDA), and before the model loads.
    check_bitsandbytes_loads(profile)
    # The trainer accumulates by itself. A plain gradient_accumulation_steps would still be read from an
    # ACCELERATE_GRADIENT_ACCUMULATION_STEPS left in the shell by another tool, and accelerate would then
    # shrink every loss by it; a plugin given outright is never overridden.
    accelerator = Accelerator(cpu=on_cpu(), mixed_precision=precision, log_with=log_with, project_dir=str(Path(run_dir) / "logs"),
                              kwargs_handlers=handlers, gradient_accumulation_plugin=GradientAccumulationPlugin(num_steps=1))
    _check_sharded(accelerator, profile)
    return accelerator


def _check_sharded(accelerator: Any, profile: Any) -> None:
    """The sharding the profile asks for is the one accelerate set up (from accelerate launch's options)."""
    from accelerate.utils import DistributedType

    sharding = profile.launch.sharding
    wanted = {"fsdp": DistributedType.FSDP, "deepspeed": DistributedType.DEEPSPEED}.get(sharding)
    if wanted is None:
        return
    if accelerator.distributed_type != wanted:
        # accelerate turns FSDP or DeepSpeed on only over GPUs (its state keeps MULTI_CPU on CPUs,
        # where every process would hold the whole model), and only in processes it launched.
        raise ShardingUnavailableError(
            f'launch.sharding = "{sharding}", but accelerate set up {accelerator.distributed_type.value} training here, '
            f"which does not shard: accelerate shards only across GPUs, in processes started by accelerate launch "
            f'(dbtui run starts them so). On a machine without GPUs set sharding = "none".'
        )
    if wanted == DistributedType.DEEPSPEED:
        # The trainer hands accelerate no DataLoader to read the batch size from.
        accelerator.state.deepspeed_plugin.deepspeed_config["train_micro_batch_size_per_gpu"] = profile.training.train_batch_size
