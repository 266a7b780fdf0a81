"""What to turn on or down when a profile needs more GPU memory than the card has: from its own
settings, most effective first. Said when a run runs out of memory, and when the meter finds no
card size that holds it."""

from __future__ import annotations

from typing import Any


def memory_advice(profile: Any) -> str:
    """The savers this profile does not use yet, as settings to write; one sentence when it uses them all."""
    tips = []
    if not profile.precision.gradient_checkpointing:
        tips.append("turn on gradient checkpointing (precision.gradient_checkpointing = true)")
    if profile.precision.mixed_precision == "no":
        tips.append("use mixed precision (precision.mixed_precision = \"fp16\", or \"bf16\" on Ampere and newer)")
    if profile.optimizer.name in ("adamw", "lion"):
        tips.append(f"use the 8-bit optimizer (optimizer.name = \"{profile.optimizer.name}8bit\")")
    if profile.training.method == "full":
        if not profile.precision.bf16_weights:
            tips.append("keep the weights in bf16, with no fp32 copy (precision.bf16_weights = true, on Ampere and newer)")
        if not profile.optimizer.fused_backward:
            tips.append("fuse the optimizer step into the backward pass, so no full set of gradients exists "
                        "(optimizer.fused_backward = true, with gradient_accumulation_steps = 1)")
    if profile.training.train_text_encoder:
        tips.append("stop training the text encoder (training.train_text_encoder = false)")
    if not profile.dataset.cache_latents:
        tips.append("cache latents (dataset.cache_latents = true)")
    if profile.training.train_batch_size > 1:
        tips.append(f"lower training.train_batch_size to {max(1, profile.training.train_batch_size // 2)} "
                    "and raise gradient_accumulation_steps to match")
    if profile.training.method == "full":
        tips.append("train a LoRA instead (training.method = \"lora\"): it fits 8 GB cards")
    if profile.dataset.resolution > 512:
        tips.append("lower dataset.resolution")
    return "; ".join(tips) or "this setup is already as lean as dbtui can make it: use a GPU with more memory"
