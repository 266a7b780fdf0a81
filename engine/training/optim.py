"""Optimizers and learning-rate schedules from the profile."""

from __future__ import annotations

from typing import Any

import torch

from engine.errors import DbtuiError
from engine.events import Warning
from engine.profile.schedule_warnings import WARMUP_KEY, warmup_shortfall


FUSED_DEVICES = ("cuda", "cpu")  # where torch.optim.AdamW(fused=True) runs


class OptimizerUnavailableError(DbtuiError):
    """The chosen optimizer cannot run here; the message names an alternative."""


def _bitsandbytes(name: str) -> Any:
    from engine.support.deferred_import import load

    try:
        import bitsandbytes as bnb

        # Deferred (engine/runs/in_process.py): its code, and so a broken install's error, runs only now.
        load(bnb)
    except Exception as error:  # noqa: BLE001 - any import failure means the same to the user
        raise OptimizerUnavailableError(
            f"optimizer '{name}' needs bitsandbytes, which cannot be loaded here ({error}). "
            f"Install it (pip install bitsandbytes) or set optimizer.name = \"{name.replace('8bit', '')}\"."
        ) from None
    return bnb


def build_optimizer(name: str, params: list[dict[str, Any]], settings: Any, lr: float) -> torch.optim.Optimizer:
    """The optimizer ``name`` over ``params`` with the profile's betas, decay and eps."""
    betas = (settings.beta1, settings.beta2)
    if name == "adamw":
        # torch's fused kernel on a CPU too (torch 2.4+): its default there loops over the weights in Python, a fifth
        # of the tiny demo's step (28 ms of 160 a step, fused 6).
        fused = all(p.device.type in FUSED_DEVICES for group in params for p in group["params"])
        return torch.optim.AdamW(params, lr=lr, betas=betas, weight_decay=settings.weight_decay, eps=settings.eps, fused=fused or None)
    if name == "adamw8bit":
        return _bitsandbytes(name).optim.AdamW8bit(params, lr=lr, betas=betas, weight_decay=settings.weight_decay, eps=settings.eps)
    if name == "lion8bit":
        return _bitsandbytes(name).optim.Lion8bit(params, lr=lr, betas=betas, weight_decay=settings.weight_decay)
    if name == "lion":
        from lion_pytorch import Lion

        return Lion(params, lr=lr, betas=betas, weight_decay=settings.weight_decay)
    if name == "prodigy":
        from prodigyopt import Prodigy

        return Prodigy(params, lr=lr, betas=betas, weight_decay=settings.weight_decay, eps=settings.eps)
    if name == "adafactor":
        from transformers.optimization import Adafactor

        return Adafactor(params, lr=lr, relative_step=False, scale_parameter=False, warmup_init=False, weight_decay=settings.weight_decay)
    raise OptimizerUnavailableError(f"unknown optimizer '{name}'")


def run_learning_rate(profile: Any, num_processes: int) -> float:
    """The learning rate a run of ``profile`` on ``num_processes`` processes sets: scaled by its batch with scale_lr."""
    lr = profile.learning_rate
    if profile.optimizer.scale_lr:
        lr *= profile.training.train_batch_size * profile.training.gradient_accumulation_steps * num_processes
    return lr


def build_lr_scheduler(optimizer: torch.optim.Optimizer, settings: Any, total_steps: int) -> Any:
    """diffusers' schedulers, stepped once per optimizer step (not through accelerate, which
    would step it once per process)."""
    from diffusers.optimization import get_scheduler

    return get_scheduler(
        settings.lr_scheduler,
        optimizer=optimizer,
        num_warmup_steps=settings.lr_warmup_steps,
        num_training_steps=total_steps,
        num_cycles=settings.lr_cycles,
        power=settings.lr_power,
    )


def rates_from_schedule(scheduler: Any) -> None:
    """Set the optimizer's rates to those ``scheduler`` gives the step after its last, as its own step would: a
    checkpoint's optimizer state holds the rates of the schedule it was made on, and a resume over another total lays
    the schedule out anew; left as loaded, the first step trained at the old rate and the new one came a step late."""
    rates = [base * factor(scheduler.last_epoch) for base, factor in zip(scheduler.base_lrs, scheduler.lr_lambdas)]
    for group, rate in zip(scheduler.optimizer.param_groups, rates):
        group["lr"] = rate
    scheduler._last_lr = rates  # what get_last_lr says: the rate the step trains at


def warmup_warning(settings: Any, total_steps: int) -> Warning | None:
    """A warm-up as long as the run or longer: the learning rate never reaches the one set."""
    shortfall = warmup_shortfall(settings, total_steps)
    return Warning(message=f"{WARMUP_KEY} {shortfall[0]}", advice=shortfall[1]) if shortfall else None


def build_step_optimizer(groups: list[dict[str, Any]], settings: Any, lr: float, *, per_weight: bool,
                         rounding: torch.Generator | None = None) -> torch.optim.Optimizer:
    """The profile's optimizer over ``groups``: one over all weights, or one per weight
    (``per_weight``: the step fused into the backward pass, or bf16 weights stepped through fp32
    with ``rounding`` as the stochastic rounding's generator)."""
    from engine.training.per_parameter import PerParameterOptimizer

    def make(some: list[dict[str, Any]]) -> torch.optim.Optimizer:
        return build_optimizer(settings.name, some, settings, lr)

    return PerParameterOptimizer(groups, make, rounding=rounding) if per_weight else make(groups)
