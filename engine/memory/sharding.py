"""What one GPU holds of a step when ``launch.sharding`` splits a full fine-tune among the processes.

The trainer launches sharding through accelerate (engine/runs/command.py): FSDP2 with FULL_SHARD
(``reshard_after_forward``) over the blocks the model names unsplittable (``_no_split_modules``), or
DeepSpeed ZeRO stage 2. The profile rules allow either only for a full fine-tune of the denoiser
alone, without bf16 weights or the fused step, on two processes or more (engine/profile/launch_rules.py).

- FSDP2: each process keeps 1/N of the trained weights, of their gradients and of the optimizer's
  state. A unit's weights are gathered in the compute dtype (accelerate's mixed-precision policy)
  while it runs, so autocast makes no copies of them: the root unit stays gathered through the step,
  and at most two blocks besides (the one running and the one prefetched), with one block's whole
  gradients before they are scattered. With gradient accumulation the trainer runs every micro-batch
  but the last under ``no_sync`` (engine/training/steps.py), where FSDP2 keeps each weight's whole
  gradient, in its reduce dtype (the compute dtype; fp32 without mixed precision), on every GPU until
  the last one: the summed gradients are not split.
- DeepSpeed ZeRO-2: each process keeps the whole weights and 1/N of the gradients and the optimizer's
  state, plus its reduce bucket (DeepSpeed's default size: accelerate's config sets none). Under mixed
  precision its half-precision copy of the weights with 1/N of their fp32 master copy is counted as the
  fp32 weights the trainer loads, which is never less; without it the weights stay fp32 and ZeRO clones
  its 1/N into a master copy besides.
Neither keeps DDP's bucket copy of the gradients.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import torch

from engine.training.precision import weight_dtype

DEEPSPEED_REDUCE_BUCKET = 500_000_000  # elements: DeepSpeed's default reduce_bucket_size


@dataclass(frozen=True)
class StepParts:
    """The pieces of a step's peak on one GPU (bytes)."""

    weights: int
    state: int
    gradients: int  # every trained weight's gradient after the backward pass
    gradients_at_peak: int  # of those, alive at the backward pass's peak
    accumulated: int  # gradients summed from earlier micro-batches
    held: int  # what the backward pass holds at its peak besides gradients (autocast's copies included)
    copies: int  # of which autocast's copies of weights
    temporaries: int  # the optimizer update's
    bucket_copy: int  # DDP's copy of the gradients


def _units(module: torch.nn.Module, unsplit: set[str]) -> tuple[int, list[int]]:
    """(the root unit's parameter count, each block's), as FSDP wraps ``module``: a block's own excludes the blocks in it."""
    blocks: list[int] = []

    def own(m: torch.nn.Module) -> int:
        count = sum(p.numel() for p in m.parameters(recurse=False))
        for child in m.children():
            if type(child).__name__ in unsplit:
                blocks.append(own(child))
            else:
                count += own(child)
        return count

    return own(module), blocks


def _fsdp_gathered(denoiser: torch.nn.Module, precision: str) -> int:
    itemsize = weight_dtype(precision).itemsize
    root, blocks = _units(denoiser, set(getattr(denoiser, "_no_split_modules", None) or ()))
    largest = max(blocks, default=0)
    return (root + 3 * largest) * itemsize  # the root, two blocks' weights and one block's gradients


def shard(parts: StepParts, profile: Any, denoiser: torch.nn.Module, trained: int) -> tuple[StepParts, str]:
    """``parts`` as one of ``profile``'s processes holds them under its sharding, with the note that says how.
    ``trained``: the bytes of the trained weights among ``parts.weights``."""
    sharding = profile.launch.sharding
    n = profile.launch.num_processes
    precision = profile.precision.mixed_precision
    numel = sum(p.numel() for p in denoiser.parameters() if p.requires_grad)
    itemsize = weight_dtype(precision).itemsize
    split = replace(parts, state=parts.state // n, gradients=parts.gradients // n, gradients_at_peak=parts.gradients_at_peak // n,
                    accumulated=parts.accumulated // n, temporaries=parts.temporaries // n, bucket_copy=0,
                    held=parts.held - parts.copies, copies=0)
    if sharding == "fsdp":
        gathered = _fsdp_gathered(denoiser, precision)
        accumulating = profile.training.gradient_accumulation_steps > 1
        accumulated = numel * itemsize if accumulating else split.accumulated
        unsplit = (f", and every weight's whole gradient ({accumulated / 2**30:.2f} GB) between micro-batches, "
                   "which no_sync leaves unsplit") if accumulating else ""
        return replace(split, weights=parts.weights - trained + trained // n, held=split.held + gathered,
                       accumulated=accumulated), (
            f"FSDP across {n} processes: each GPU holds 1/{n} of the trained weights, gradients and optimizer state, "
            f"and up to {gathered / 2**30:.2f} GB of gathered blocks (the root, the running and the prefetched block)"
            f"{unsplit}")
    bucket = min(DEEPSPEED_REDUCE_BUCKET, numel) * itemsize
    # Without mixed precision the fp32 weights are the ones trained, and ZeRO's master copy of its 1/N comes on top.
    master = trained // n if precision == "no" else 0
    weights = ("the whole fp32 weights and 1/{n} of their fp32 master copy" if master else
               "the whole weights (counted in fp32, at least its half-precision copy and 1/{n} of the fp32 master)")
    return replace(split, weights=parts.weights + master, gradients=split.gradients + bucket,
                   gradients_at_peak=split.gradients_at_peak + bucket), (
        f"DeepSpeed ZeRO-2 across {n} processes: each GPU holds {weights.format(n=n)}, 1/{n} of the gradients and "
        f"optimizer state, and a {bucket / 2**30:.2f} GB gradient reduce bucket")
