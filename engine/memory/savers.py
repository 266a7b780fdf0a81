"""What to turn on or down when a profile needs more GPU memory than the card has: from its own
settings, most effective first. Said when a run runs out of memory, and when the meter finds no
card size that holds it."""

from __future__ import annotations

from typing import Any


def memory_advice(profile: Any) -> str:
    """The savers this profile does not use yet, as settings to write; one sentence when it uses them all."""
    from engine.model_info import likely_family

    tips = []
    # Flux's frozen 12B transformer is most of its memory (23 GB in bf16): a quantized base is the saver that counts.
    flux = likely_family(profile.model.pretrained) == "flux"
    quantize = "load the frozen base quantized (model.quantize = \"nf4\": a quarter of its weights' memory)"
    if flux and profile.training.method == "lora" and not profile.model.quantize:
        tips.append(quantize)
    if not profile.precision.gradient_checkpointing:
        tips.append("turn on gradient checkpointing (precision.gradient_checkpointing = true)")
    if profile.precision.mixed_precision == "no":
        tips.append("use mixed precision (precision.mixed_precision = \"fp16\", or \"bf16\" on Ampere and newer)")
    if profile.optimizer.name in ("adamw", "lion"):
        tips.append(f"use the 8-bit optimizer (optimizer.name = \"{profile.optimizer.name}8bit\")")
    # The profile rules let bf16 weights train only in bf16, and refuse the fused step under fp16: the tip says so.
    in_bf16 = "" if profile.precision.mixed_precision == "bf16" else "precision.mixed_precision = \"bf16\", "
    if profile.training.method == "full":
        if not profile.precision.bf16_weights:
            tips.append(f"keep the weights in bf16, with no fp32 copy ({in_bf16}precision.bf16_weights = true, on Ampere and newer)")
        if not profile.optimizer.fused_backward:
            unscaled = in_bf16 if profile.precision.mixed_precision == "fp16" else ""
            tips.append("fuse the optimizer step into the backward pass, so no full set of gradients exists "
                        f"({unscaled}optimizer.fused_backward = true, with gradient_accumulation_steps = 1)")
    if profile.training.train_text_encoder:
        tips.append("stop training the text encoder (training.train_text_encoder = false)")
    if not profile.dataset.cache_latents:
        tips.append("cache latents (dataset.cache_latents = true)")
    if profile.training.train_batch_size > 1:
        tips.append(f"lower training.train_batch_size to {max(1, profile.training.train_batch_size // 2)} "
                    "and raise gradient_accumulation_steps to match")
    if profile.training.method == "full":
        tips.append("train a LoRA on a quantized base instead (training.method = \"lora\", model.quantize = \"nf4\")"
                    if flux else "train a LoRA instead (training.method = \"lora\"), which needs far less")
    else:
        if not flux and not profile.model.quantize:
            tips.append(quantize)
        if profile.training.lora is not None and profile.training.lora.rank > 8:
            tips.append(f"lower the LoRA rank (training.lora.rank = {profile.training.lora.rank // 2})")
    if profile.dataset.resolution > 512:
        tips.append("lower dataset.resolution")
    return "; ".join(tips) or "this setup is already as lean as dbtui can make it: use a GPU with more memory"
